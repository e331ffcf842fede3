//! The AMX path of the bf16 products: Intel's tile matrix multiply (`tdpbf16ps`), as oneDNN
//! runs PyTorch's autocast on Sapphire Rapids and later Xeons.
//!
//! A tile register holds 16 rows of 64 bytes. `tdpbf16ps C, A, B` takes `A` as 16 rows of 16
//! bf16 `k`-pairs, `B` as 16 rows (`k`-pairs) of 16 columns, each word the pair of one column,
//! and adds `A · B` into the 16 × 16 f32 tile `C`: 8192 multiply-adds in one instruction, with
//! the same per-pair arithmetic as `vdpbf16ps` (both products of a pair summed into the f32
//! lane). `B`'s layout is exactly a 16-row slice of a [`PackedBf16`] panel, which is why the
//! panels pad their pair count to a multiple of 16 with zeros; `A`'s rows are the rounded
//! pairs, their stride padded alike and their count padded to a multiple of 16 zero rows.
//!
//! The block is 32 × 32 of `C` in four tiles (`tmm0..3`), two `A` tiles (`tmm4, 5`) and two
//! `B` tiles (`tmm6, 7`): per 16 pairs of `k`, four loads and four products.
//!
//! Linux hands out tile state only to processes that ask (`arch_prctl(ARCH_REQ_XCOMP_PERM)`);
//! [`has_amx`] asks once. The tiles are configured at the start of each call and released at
//! its end, so a thread holds no tile state between products.

use super::{CPtr, NR, PackedBf16, Pairs};
use std::arch::asm;

/// Rows (and `k`-pairs) per tile.
pub(super) const TILE: usize = 16;

/// Whether the CPU has AMX-BF16, Linux granted this process tile state, and
/// `RNNKIT_NO_AMX=1` is not set. Asked once per process.
pub(super) fn has_amx() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("RNNKIT_NO_AMX").is_none_or(|v| v != "1")
            && cpu_has_amx_bf16()
            && request_tile_permission()
    })
}

/// CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
fn cpu_has_amx_bf16() -> bool {
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
}

/// Asks Linux for the tile data state (XFEATURE 18); without it the first tile instruction
/// raises SIGILL. Other systems: no AMX.
fn request_tile_permission() -> bool {
    #[cfg(target_os = "linux")]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a plain system call with integer arguments.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// `ldtilecfg`'s 64-byte operand (palette 1): every tile 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl TileConfig {
    fn full_tiles() -> Self {
        let mut cfg = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        cfg.colsb[..8].fill(64);
        cfg.rows[..8].fill(TILE as u8);
        cfg
    }
}

/// `C[:, panels p0..p1] += A · B[:, panels p0..p1]` on tiles.
///
/// # Safety
/// [`has_amx`] is true; `c` valid for `m` rows of stride `ldc ≥ n`, and no other thread
/// touches these columns meanwhile; `pairs` is row-major (`pair_stride` 1) with
/// `row_stride == b.kpp`, and holds `⌈m/16⌉·16` rows, zero past `m` rows and past `⌈k/2⌉`
/// pairs.
pub(super) unsafe fn panels(
    c: CPtr,
    ldc: usize,
    pairs: Pairs,
    m: usize,
    b: &PackedBf16,
    (p0, p1): (usize, usize),
) {
    let kpp = b.kpp;
    let m16 = m.div_ceil(TILE) * TILE;
    assert!(pairs.pair_stride == 1 && pairs.row_stride == kpp && kpp.is_multiple_of(TILE));
    assert!(m16 == 0 || pairs.data.len() >= m16 * kpp);
    assert!(b.data.len() >= p1 * kpp * NR);
    if m == 0 || kpp == 0 || p0 >= p1 {
        return;
    }
    let cfg = TileConfig::full_tiles();
    let mut tmp = Block([0.0; 2 * TILE * 2 * NR]);
    // SAFETY: AMX present and permitted (caller); the config outlives the instruction.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly)) };
    let mut panel = p0;
    while panel < p1 {
        let np = (p1 - panel).min(2);
        let j0 = panel * NR;
        let width = (b.n - j0).min(np * NR);
        let mut i = 0;
        while i < m {
            let nr = (m16 - i).min(2 * TILE) / TILE;
            let a = pairs.data[i * kpp..].as_ptr();
            let bp = b.data[panel * kpp * NR..].as_ptr();
            let rows = (m - i).min(nr * TILE);
            if rows == nr * TILE && width == np * NR {
                // A whole block inside C: the tiles accumulate straight into it.
                // SAFETY: rows i..i + 16·nr < m and columns j0..j0 + 16·np ≤ n are inside C and
                // ours; `a`, `bp` as below.
                let out = Out::Direct(unsafe { c.0.add(i * ldc + j0) }, ldc);
                unsafe { block(out, a, kpp, bp, nr, np) };
                i += nr * TILE;
                continue;
            }
            // SAFETY: `a` holds nr·16 rows of kpp pairs from row i (i + nr·16 ≤ m16), `bp` np
            // panels of kpp·16 words (panel + np ≤ p1); tiles configured above.
            unsafe { block(Out::Staged(&mut tmp), a, kpp, bp, nr, np) };
            for r in 0..rows {
                // SAFETY: row i + r < m, columns j0..j0 + width ≤ n, exclusively ours.
                let out =
                    unsafe { std::slice::from_raw_parts_mut(c.0.add((i + r) * ldc + j0), width) };
                for (o, v) in out.iter_mut().zip(&tmp.0[r * 2 * NR..r * 2 * NR + width]) {
                    *o += v;
                }
            }
            i += nr * TILE;
        }
        panel += np;
    }
    // SAFETY: tiles configured above; releasing returns the thread to the init state.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// A 32 × 32 f32 block of `C`, aligned for the tile stores.
#[repr(C, align(64))]
struct Block([f32; 2 * TILE * 2 * NR]);

/// Where a block's products go.
enum Out<'a> {
    /// Into C itself (`+=`): the block's top-left element and C's row stride in elements; the
    /// block is whole (`nr·16` rows, `np·16` columns inside C).
    Direct(*mut f32, usize),
    /// Into a 32 × 32 buffer (`=`), for the caller to add the part inside C.
    Staged(&'a mut Block),
}

/// `out (+)= A[nr·16 rows] · B[np panels]` over all `kpp` pairs (`nr`, `np` ∈ {1, 2}).
///
/// # Safety
/// Tiles configured as [`TileConfig::full_tiles`]; `a` readable for `nr·16` rows of `kpp`
/// words, `b` for `np` panels of `kpp·16` words; a `Direct` block readable and writable for
/// `nr·16` rows of `np·16` elements at its stride.
unsafe fn block(out: Out, a: *const u32, kpp: usize, b: *const u32, nr: usize, np: usize) {
    let sa = kpp * 4; // bytes between rows of A
    let sb = NR * 4; // bytes between pair rows of a B panel
    let a1 = a.wrapping_add(TILE * kpp);
    let b1 = b.wrapping_add(kpp * NR);
    let direct = matches!(out, Out::Direct(..));
    // Where C's four tiles live: their top-left elements and the row stride in bytes.
    let (t, st) = match out {
        Out::Direct(p, ldc) => (p, ldc * 4),
        Out::Staged(tmp) => (tmp.0.as_mut_ptr(), 2 * NR * 4),
    };
    let ld = st / 4;
    let corners = [
        t,
        t.wrapping_add(NR),
        t.wrapping_add(TILE * ld),
        t.wrapping_add(TILE * ld + NR),
    ];
    // SAFETY: every load below reads 16 rows at the given stride inside the caller's extents
    // (tiles of A row-block 1 and B panel 1 only when nr, np say they exist; C's tiles only
    // those inside the block); the stores write the same C tiles, or inside `tmp` (32 rows of
    // 128 bytes).
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
        if direct {
            asm!("tileloadd tmm0, [{c} + {st} * 1]", c = in(reg) corners[0], st = in(reg) st, options(nostack, readonly));
            if np == 2 {
                asm!("tileloadd tmm1, [{c} + {st} * 1]", c = in(reg) corners[1], st = in(reg) st, options(nostack, readonly));
            }
            if nr == 2 {
                asm!("tileloadd tmm2, [{c} + {st} * 1]", c = in(reg) corners[2], st = in(reg) st, options(nostack, readonly));
            }
            if nr == 2 && np == 2 {
                asm!("tileloadd tmm3, [{c} + {st} * 1]", c = in(reg) corners[3], st = in(reg) st, options(nostack, readonly));
            }
        }
        for q in (0..kpp).step_by(TILE) {
            let (ak, bk) = (q, q * NR);
            asm!(
                "tileloadd tmm4, [{a} + {sa} * 1]",
                "tileloadd tmm6, [{b} + {sb} * 1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                a = in(reg) a.add(ak),
                b = in(reg) b.add(bk),
                sa = in(reg) sa,
                sb = in(reg) sb,
                options(nostack, readonly)
            );
            if np == 2 {
                asm!(
                    "tileloadd tmm7, [{b} + {sb} * 1]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    b = in(reg) b1.add(bk),
                    sb = in(reg) sb,
                    options(nostack, readonly)
                );
            }
            if nr == 2 {
                asm!(
                    "tileloadd tmm5, [{a} + {sa} * 1]",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    a = in(reg) a1.add(ak),
                    sa = in(reg) sa,
                    options(nostack, readonly)
                );
                if np == 2 {
                    asm!("tdpbf16ps tmm3, tmm5, tmm7", options(nostack, nomem));
                }
            }
        }
        asm!("tilestored [{c} + {st} * 1], tmm0", c = in(reg) corners[0], st = in(reg) st, options(nostack));
        if np == 2 || !direct {
            asm!("tilestored [{c} + {st} * 1], tmm1", c = in(reg) corners[1], st = in(reg) st, options(nostack));
        }
        if nr == 2 || !direct {
            asm!("tilestored [{c} + {st} * 1], tmm2", c = in(reg) corners[2], st = in(reg) st, options(nostack));
        }
        if (nr == 2 && np == 2) || !direct {
            asm!("tilestored [{c} + {st} * 1], tmm3", c = in(reg) corners[3], st = in(reg) st, options(nostack));
        }
    }
}
