//! Runtime SIMD dispatch: the default target is baseline x86-64, so element-wise kernels are
//! compiled twice, once plain and once with AVX2+FMA enabled, and the faster one is picked at
//! run time. Both copies run the same Rust code, so they give bit-identical results (Rust never
//! contracts `a * b + c` into an FMA on its own).

/// Defines `fn name(args) body` (returning nothing) as a dispatcher over an AVX2+FMA build and a
/// plain build of the same body.
macro_rules! simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) { generic($($arg),*) }
                if $crate::kernels::has_avx2_fma() {
                    // SAFETY: the CPU was just checked for AVX2 and FMA.
                    unsafe { avx2($($arg),*) };
                    return;
                }
            }
            generic($($arg),*)
        }
    };
}
