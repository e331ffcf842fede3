//! The three recurrent cells, one file each. A cell file holds the math of one time step for a
//! block of batch rows: the forward equations, the backward equations derived from them, and the
//! fused element-wise kernels that apply both (after the GEMMs of `recurrent::direction` have
//! produced the pre-activations). Shapes use the legend of [`crate::kernels`]; `n` is the number
//! of batch rows in the block.

pub mod gru;
pub mod lstm;
pub mod rnn;

/// Splits a row of `parts * h` values into its gate blocks.
#[inline(always)]
pub(crate) fn gate_blocks<const N: usize>(row: &[f32], h: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| &row[k * h..(k + 1) * h])
}

/// Mutable form of [`gate_blocks`].
#[inline(always)]
pub(crate) fn gate_blocks_mut<const N: usize>(row: &mut [f32], h: usize) -> [&mut [f32]; N] {
    let mut rest = row;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(h);
        rest = tail;
        head
    })
}
