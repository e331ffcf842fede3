//! [`MpiCommunicator`]: the MPI world (Open MPI, MPICH) as a [`Communicator`].

use super::Communicator;
use crate::error::Result;
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::CommunicatorCollectives as _;

/// The processes `mpirun` started, summing with `MPI_Allreduce`.
///
/// MPI allows one initialization per process: create one with [`MpiCommunicator::init`] and
/// share it (it is `Send + Sync` behind an `Arc`, and calls are serialized by the trainer).
pub struct MpiCommunicator {
    // Finalizes MPI when dropped; kept alive as long as the world is used.
    _universe: mpi::environment::Universe,
    world: SimpleCommunicator,
}

// SAFETY: the trainer calls the communicator from one thread at a time, and MPI is initialized
// for MPI_THREAD_SERIALIZED use.
unsafe impl Send for MpiCommunicator {}
// SAFETY: as above: never two calls at once.
unsafe impl Sync for MpiCommunicator {}

impl MpiCommunicator {
    /// Initializes MPI and joins the world; `None` when MPI was already initialized in this
    /// process.
    pub fn init() -> Option<MpiCommunicator> {
        // Serialized: any thread may call, one at a time (the trainer's thread, which need not
        // be the one that initialized MPI).
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Serialized)?;
        let world = universe.world();
        Some(MpiCommunicator {
            _universe: universe,
            world,
        })
    }
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        mpi::traits::Communicator::rank(&self.world) as usize
    }

    fn size(&self) -> usize {
        mpi::traits::Communicator::size(&self.world) as usize
    }

    fn all_reduce_sum(&self, data: &mut [f64]) -> Result<()> {
        // MPI errors abort the job by default (MPI_ERRORS_ARE_FATAL): a dead rank ends every
        // process rather than leaving them waiting.
        let send = data.to_vec();
        self.world
            .all_reduce_into(&send[..], data, SystemOperation::sum());
        Ok(())
    }

    fn all_reduce_sum_f32(&self, data: &mut [f32]) -> Result<()> {
        let send = data.to_vec();
        self.world
            .all_reduce_into(&send[..], data, SystemOperation::sum());
        Ok(())
    }
}
