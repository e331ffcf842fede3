//! Runtime SIMD dispatch: the default target is baseline x86-64, so element-wise kernels are
//! compiled three times, plain, with AVX2+FMA and with AVX-512, and the widest the CPU has is
//! picked at run time (`RNNKIT_NO_AVX512=1` skips AVX-512). All copies run the same Rust code,
//! so they give bit-identical results (Rust never contracts `a * b + c` into an FMA on its own).

/// Defines `fn name(args) body` (returning nothing) as a dispatcher over an AVX-512 build, an
/// AVX2+FMA build and a plain build of the same body.
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
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) { generic($($arg),*) }
                if $crate::kernels::has_avx512f() {
                    // SAFETY: the CPU was just checked for AVX-512F; every CPU with it has
                    // AVX2 and FMA.
                    unsafe { avx512($($arg),*) };
                    return;
                }
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
