//! Kernels: the GEMM wrappers, fast activations, SIMD dispatch and the one primitive that lets
//! threads write disjoint batch rows of a shared buffer. This folder is the only place in the
//! crate with `unsafe` code; what it exports is safe to call.
//!
//! Dimension legend used across kernels and cells:
//! `T` time steps, `B` batch, `I` input features, `H` hidden units, `G` gates (LSTM 4, GRU 3,
//! RNN 1), `P` the size of `h` (`proj_size` when projecting, else `H`).

pub mod activation;
pub mod bf16;
#[macro_use]
pub(crate) mod dispatch;
pub mod elementwise;
pub mod gemm;
pub mod int8;
pub mod packed;
pub(crate) mod shared;
pub mod small_gemm;

/// Whether the running CPU has AVX-512F (checked once, cached by std). `RNNKIT_NO_AVX512=1`
/// turns the AVX-512 kernels off (to compare, or on CPUs that clock down under them).
#[inline]
pub fn has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        std::is_x86_feature_detected!("avx512f")
            && !*OFF.get_or_init(|| std::env::var_os("RNNKIT_NO_AVX512").is_some_and(|v| v == "1"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the running CPU has AVX2 and FMA (checked once, cached by std).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
