//! GRU cell, PyTorch/cuDNN variant (`torch.nn.GRU`, gate order `r, z, n`).
//!
//! Forward, for one step with input `x` and previous state `h`:
//!
//! ```text
//! r  = σ(W_ir x + b_ir + W_hr h + b_hr)
//! z  = σ(W_iz x + b_iz + W_hz h + b_hz)
//! a  = W_hn h + b_hn                     (kept: r multiplies it)
//! n  = tanh(W_in x + b_in + r ⊙ a)
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! Backward, given `dh'`:
//!
//! ```text
//! dn    = dh' ⊙ (1 − z)
//! dz    = dh' ⊙ (h − n)
//! dh    = dh' ⊙ z                         direct path, plus the GEMM below
//! dâ_n  = dn ⊙ (1 − n²)                   gradient of n's pre-activation
//! dr    = dâ_n ⊙ a
//! dâ_r  = dr ⊙ r(1 − r),  dâ_z = dz ⊙ z(1 − z)
//! input side:     dG_x = [dâ_r, dâ_z, dâ_n]       → dx = W_ihᵀ dG_x, dW_ih += dG_x xᵀ, db_ih += dG_x
//! recurrent side: dG_h = [dâ_r, dâ_z, r ⊙ dâ_n]   → dh += W_hhᵀ dG_h, dW_hh += dG_h hᵀ, db_hh += dG_h
//! ```
//!
//! The fast path folds `b_ih` and the `r`, `z` parts of `b_hh` into the input projection; only
//! `b_hn` is added here, because `r` multiplies it.

use super::{gate_blocks, gate_blocks_mut};
use crate::kernels::activation::{sigmoid, tanh};

simd_fn! {
    /// Forward gate pass for `n` rows.
    ///
    /// `gx`: `[n, 3H]` input part (with `b_ih` and `b_hr`, `b_hz`); `gh`: `[n, 3H]` recurrent
    /// part without bias; `b_hn`: `[H]`; `hs`: `[n, H]` in `h`, out `h'`; `gates`: `[n, 3H]`
    /// out, activated `r, z, n`; `a`: `[n, H]` out, `W_hn h + b_hn`.
    pub fn forward_rows(gx: &[f32], gh: &[f32], b_hn: &[f32], hs: &mut [f32], gates: &mut [f32], a: &mut [f32], h: usize) {
        let g3 = 3 * h;
        let b_hn = &b_hn[..h];
        let rows = gx
            .chunks_exact(g3)
            .zip(gh.chunks_exact(g3))
            .zip(hs.chunks_exact_mut(h))
            .zip(gates.chunks_exact_mut(g3))
            .zip(a.chunks_exact_mut(h));
        for ((((gx, gh), hs), gates), a) in rows {
            let [xr, xz, xn] = gate_blocks::<3>(gx, h);
            let [hr, hz, hn] = gate_blocks::<3>(gh, h);
            let [gr, gz, gn] = gate_blocks_mut::<3>(gates, h);
            for j in 0..h {
                let r = sigmoid(xr[j] + hr[j]);
                let z = sigmoid(xz[j] + hz[j]);
                let an = hn[j] + b_hn[j];
                let n = tanh(xn[j] + r * an);
                hs[j] = n + z * (hs[j] - n);
                gr[j] = r;
                gz[j] = z;
                gn[j] = n;
                a[j] = an;
            }
        }
    }
}

simd_fn! {
    /// Backward gate pass for `n` rows.
    ///
    /// `gates`: `[n, 3H]` activated `r, z, n`; `a`: `[n, H]`; `h_prev`: `[n, H]`;
    /// `dh`: `[n, H]` in `dh'`, out the direct part `dh' ⊙ z` (the caller adds `W_hhᵀ dG_h`);
    /// `dgx`, `dgh`: `[n, 3H]` out, input-side and recurrent-side pre-activation gradients.
    pub fn backward_rows(gates: &[f32], a: &[f32], h_prev: &[f32], dh: &mut [f32], dgx: &mut [f32], dgh: &mut [f32], h: usize) {
        let g3 = 3 * h;
        let rows = gates
            .chunks_exact(g3)
            .zip(a.chunks_exact(h))
            .zip(h_prev.chunks_exact(h))
            .zip(dh.chunks_exact_mut(h))
            .zip(dgx.chunks_exact_mut(g3).zip(dgh.chunks_exact_mut(g3)));
        for ((((gates, a), hp), dh), (dgx, dgh)) in rows {
            let [gr, gz, gn] = gate_blocks::<3>(gates, h);
            let [dxr, dxz, dxn] = gate_blocks_mut::<3>(dgx, h);
            let [dhr, dhz, dhn] = gate_blocks_mut::<3>(dgh, h);
            for j in 0..h {
                let (r, z, n) = (gr[j], gz[j], gn[j]);
                let d = dh[j];
                let dn_pre = d * (1.0 - z) * (1.0 - n * n);
                let dz_pre = d * (hp[j] - n) * z * (1.0 - z);
                let dr_pre = dn_pre * a[j] * r * (1.0 - r);
                dxr[j] = dr_pre;
                dxz[j] = dz_pre;
                dxn[j] = dn_pre;
                dhr[j] = dr_pre;
                dhz[j] = dz_pre;
                dhn[j] = dn_pre * r;
                dh[j] = d * z;
            }
        }
    }
}
