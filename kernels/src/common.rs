//! Shared analysis of a `KernelIr` for both renderers: IR checks, output fields, the parameter
//! layout, and the index arithmetic (how element coordinates map to buffer offsets).

use tessera_runtime::dtype::Scalar;
use tessera_runtime::ir::{InstKind, KernelIr, KernelParams, ReduceKind};
use tessera_runtime::op::{Dist, ReduceOp};
use tessera_runtime::tile::partial_dtype;
use tessera_runtime::{DType, Error, Result};

/// Threads per workgroup / block.
pub const WORKGROUP: u32 = 256;

/// How an offset `sum_d c[d] * w[d]` is computed from a linear index `L` over a list of axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinForm {
    /// `L * s` (the weights form a row-major chain over the axes; `s == 0`: always 0).
    Scaled(u64),
    /// `sum ((L / div) % modulo) * weight`; `modulo` is `None` on the outermost axis.
    Terms(Vec<Term>),
}

/// One coordinate term of a [`LinForm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub div: u64,
    pub modulo: Option<u64>,
    pub weight: u64,
}

/// The offset form of `weights` over `axes` of `shape` (row-major linear index over `axes`).
pub(crate) fn lin_form(axes: &[usize], shape: &[usize], weights: &[u64]) -> LinForm {
    // Axes of extent 1 have coordinate 0: they never contribute.
    let live: Vec<usize> = axes.iter().copied().filter(|&a| shape[a] > 1).collect();
    if live.is_empty() {
        return LinForm::Scaled(0);
    }
    let chain = live
        .windows(2)
        .all(|w| weights[w[0]] == weights[w[1]].wrapping_mul(shape[w[1]] as u64));
    if chain {
        return LinForm::Scaled(weights[*live.last().expect("non-empty")]);
    }
    let mut terms = Vec::new();
    let mut div = 1u64;
    for (k, &a) in live.iter().enumerate().rev() {
        if weights[a] != 0 {
            terms.push(Term {
                div,
                modulo: (k > 0).then_some(shape[a] as u64),
                weight: weights[a],
            });
        }
        div *= shape[a] as u64;
    }
    terms.reverse();
    LinForm::Terms(terms)
}

/// Offset expression of a linear form over index `l`, constants with suffix `suf` (`u`, `ull`).
pub(crate) fn off_expr(form: &LinForm, l: &str, suf: &str) -> String {
    match form {
        LinForm::Scaled(0) => format!("0{suf}"),
        LinForm::Scaled(1) => l.into(),
        LinForm::Scaled(s) => format!("{l} * {s}{suf}"),
        LinForm::Terms(ts) => ts
            .iter()
            .map(|t| {
                let mut c = coord_expr(t, l, suf);
                if t.weight != 1 {
                    c = format!("{c} * {}{suf}", t.weight);
                }
                c
            })
            .collect::<Vec<_>>()
            .join(" + "),
    }
}

/// The coordinate `(l / div) % modulo` of a term.
pub(crate) fn coord_expr(t: &Term, l: &str, suf: &str) -> String {
    let mut c = if t.div == 1 {
        l.to_string()
    } else {
        format!("({l} / {}{suf})", t.div)
    };
    if let Some(m) = t.modulo {
        c = format!("({c} % {m}{suf})");
    }
    c
}

/// The reduction tail, resolved.
#[derive(Debug, Clone)]
pub(crate) struct RedPlan {
    pub kind: ReduceKind,
    /// Kept axes (in order).
    pub kept: Vec<usize>,
    /// Reduced axes (sorted).
    pub axes: Vec<usize>,
    /// Number of output rows (product of kept extents).
    pub rows: u64,
    /// Number of elements reduced per row.
    pub extent: u64,
}

/// A checked kernel with its derived facts.
pub(crate) struct Plan<'a> {
    pub ir: &'a KernelIr,
    /// Elements of the index space.
    pub n: u64,
    pub red: Option<RedPlan>,
    /// Number of random parameter slots (max `param` + 1).
    pub num_random: usize,
    /// Output buffer dtypes (host view).
    pub outputs: Vec<DType>,
}

impl<'a> Plan<'a> {
    /// Checks `ir` and derives the plan.
    pub fn new(ir: &'a KernelIr) -> Result<Self> {
        check(ir)?;
        let nd = ir.shape.len();
        let red = ir.reduce.as_ref().map(|r| {
            let kept: Vec<usize> = (0..nd).filter(|a| !r.axes.contains(a)).collect();
            RedPlan {
                kind: r.kind,
                rows: kept.iter().map(|&a| ir.shape[a] as u64).product(),
                extent: r.axes.iter().map(|&a| ir.shape[a] as u64).product(),
                kept,
                axes: r.axes.clone(),
            }
        });
        Ok(Plan {
            ir,
            n: ir.shape.iter().map(|&s| s as u64).product(),
            red,
            num_random: num_random_params(ir),
            outputs: output_dtypes(ir),
        })
    }

    /// The row-major weights (contiguous strides) of the index space as u64.
    pub fn input_weights(&self, i: usize) -> Vec<u64> {
        self.ir.inputs[i]
            .strides
            .iter()
            .map(|&s| s as u64)
            .collect()
    }

    /// Largest element offset input `i` reaches (+1), for index-width decisions.
    pub fn input_span(&self, i: usize) -> u64 {
        let inp = &self.ir.inputs[i];
        1 + self
            .ir
            .shape
            .iter()
            .zip(&inp.strides)
            .map(|(&s, &w)| (s.saturating_sub(1) as u64).saturating_mul(w as u64))
            .fold(0u64, |a, b| a.saturating_add(b))
    }

    /// True when every index and offset of the kernel fits in 32 bits.
    pub fn fits_u32(&self) -> bool {
        let lim = u32::MAX as u64;
        // Head-room for `r + 256` style increments.
        self.n < lim - 1024 && (0..self.ir.inputs.len()).all(|i| self.input_span(i) < lim)
    }
}

/// Whether the kernel computes or stores f64 anywhere (f64 inputs, values, f64 draws, or f64
/// partials: float sum/prod, mean, var/std). A WGSL kernel then needs naga's
/// `Capabilities::FLOAT64` (wgpu `Features::SHADER_F64`); one that does not validates without it.
pub fn uses_f64(ir: &KernelIr) -> bool {
    ir.inputs.iter().any(|i| i.dtype == DType::F64)
        || ir.insts.iter().any(|i| {
            i.dtype == DType::F64
                || matches!(
                    i.kind,
                    InstKind::Random { dist: Dist::Uniform { .. } | Dist::Normal { .. }, .. }
                        if i.dtype != DType::F32
                )
        })
        || output_dtypes(ir).contains(&DType::F64)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op: "render kernel".into(),
        msg: msg.into(),
    }
}

/// Structural checks a renderer relies on (SSA order, operand dtypes, axis lists).
pub(crate) fn check(ir: &KernelIr) -> Result<()> {
    let nd = ir.shape.len();
    for (k, inp) in ir.inputs.iter().enumerate() {
        if inp.strides.len() != nd {
            return Err(bad(format!(
                "input {k} has {} strides for a {nd}-d index space",
                inp.strides.len()
            )));
        }
    }
    if ir.insts.is_empty() || ir.result as usize >= ir.insts.len() {
        return Err(bad("result is not an instruction"));
    }
    for (k, inst) in ir.insts.iter().enumerate() {
        let before = |v: u32| -> Result<DType> {
            if (v as usize) < k {
                Ok(ir.insts[v as usize].dtype)
            } else {
                Err(bad(format!(
                    "instruction {k} uses v{v}, not defined before it"
                )))
            }
        };
        match &inst.kind {
            InstKind::Load(i) => {
                let inp = ir
                    .inputs
                    .get(*i as usize)
                    .ok_or_else(|| bad(format!("instruction {k} loads missing input {i}")))?;
                if inp.dtype != inst.dtype {
                    return Err(bad(format!(
                        "instruction {k}: load dtype differs from input {i}"
                    )));
                }
            }
            InstKind::Const(_) => {}
            InstKind::Unary(_, a) | InstKind::Cast(a) => {
                before(*a)?;
            }
            InstKind::Binary(op, a, b) => {
                let (da, db) = (before(*a)?, before(*b)?);
                if da != db {
                    return Err(bad(format!(
                        "instruction {k}: {} operands {da} and {db} differ",
                        op.name()
                    )));
                }
            }
            InstKind::Where(c, a, b) => {
                let (dc, da, db) = (before(*c)?, before(*a)?, before(*b)?);
                if dc != DType::Bool || da != inst.dtype || db != inst.dtype {
                    return Err(bad(format!(
                        "instruction {k}: where dtypes {dc}, {da}, {db}"
                    )));
                }
            }
            InstKind::Random { gstrides, .. } => {
                if gstrides.len() != nd {
                    return Err(bad(format!("instruction {k}: {} gstrides", gstrides.len())));
                }
            }
        }
    }
    if let Some(r) = &ir.reduce {
        let sorted = r.axes.windows(2).all(|w| w[0] < w[1]);
        if !sorted || r.axes.iter().any(|&a| a >= nd) {
            return Err(bad(format!(
                "reduce axes {:?} invalid for {nd} axes",
                r.axes
            )));
        }
        if matches!(r.kind, ReduceKind::Arg(_)) && r.axes.len() != 1 {
            return Err(bad("arg reduction needs exactly one axis"));
        }
    }
    Ok(())
}

/// Number of `KernelParams::random` slots a kernel reads (largest `param` + 1).
pub fn num_random_params(ir: &KernelIr) -> usize {
    ir.insts
        .iter()
        .filter_map(|i| match i.kind {
            InstKind::Random { param, .. } => Some(param as usize + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Host dtypes of the kernel's output buffers, in binding order: the result for elementwise
/// kernels; the partial fields (`tile::partial_dtype`) for `Reduce` (two f64 fields, mean and
/// M2, for var/std); (value, i64 index) for `Arg`.
pub fn output_dtypes(ir: &KernelIr) -> Vec<DType> {
    let d = ir.result_dtype();
    match ir.reduce.as_ref().map(|r| r.kind) {
        None => vec![d],
        Some(ReduceKind::Reduce(op @ (ReduceOp::Var | ReduceOp::Std))) => {
            vec![partial_dtype(op, d); 2]
        }
        Some(ReduceKind::Reduce(op)) => vec![partial_dtype(op, d)],
        Some(ReduceKind::Arg(_)) => vec![d, DType::I64],
    }
}

/// The run-time parameters of one launch as 64-bit words, in ABI order:
/// `[n, arg_base, load_offset_0 .. load_offset_{inputs-1}, seed_0, stream_0, base_0, seed_1,
/// stream_1, base_1, ...]` with `n` the number of index-space elements (`ir.len()`), one load
/// offset per input (`params.load_offsets`, missing ones 0) and one (seed, stream, base) triple
/// per random slot (`num_random_params(ir)`; missing entries of `params.random` are zeros).
pub fn pack_params(ir: &KernelIr, params: &KernelParams) -> Vec<u64> {
    let mut w = vec![ir.len() as u64, params.arg_base];
    for i in 0..ir.inputs.len() {
        w.push(params.load_offsets.get(i).copied().unwrap_or(0));
    }
    for k in 0..num_random_params(ir) {
        let r = params.random.get(k).copied().unwrap_or_default();
        w.extend([r.seed, r.stream, r.base]);
    }
    w
}

/// [`pack_params`] split into little-endian u32 pairs `(lo, hi)`: the WGSL params buffer.
pub fn pack_params_u32(ir: &KernelIr, params: &KernelParams) -> Vec<u32> {
    pack_params(ir, params)
        .into_iter()
        .flat_map(|w| [w as u32, (w >> 32) as u32])
        .collect()
}

/// A constant as the instruction dtype sees it (same rules as the CPU's `full`).
pub(crate) enum ConstVal {
    Bool(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

pub(crate) fn const_val(s: Scalar, d: DType) -> ConstVal {
    match d {
        DType::Bool => ConstVal::Bool(s.as_bool()),
        DType::I32 => ConstVal::I32(s.as_i64() as i32),
        DType::I64 => ConstVal::I64(s.as_i64()),
        DType::F32 => ConstVal::F32(s.as_f64() as f32),
        DType::F64 => ConstVal::F64(s.as_f64()),
    }
}

/// Short lowercase name of a dtype for helper-function suffixes.
pub(crate) fn suffix(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

/// Words of one Philox output a value of `dist` in `dtype` takes (the runtime's recipe):
/// `4 / k` consecutive elements share one call.
pub(crate) fn words_per_value(dist: Dist, dtype: DType) -> u32 {
    tessera_runtime::philox::words_per_value(dist, dtype) as u32
}

/// Parameters of a uniform/normal draw, precomputed the way `tessera-cpu` does.
pub(crate) fn uniform_f32(low: f64, high: f64) -> (f32, f32) {
    (low as f32, (high - low) as f32)
}

/// The `(low, range)` words of a randint draw: `range = high - low` as u64 (wrapping).
pub(crate) fn randint_range(low: i64, high: i64) -> u64 {
    (high as i128 - low as i128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lin_forms() {
        // Contiguous (13, 7): L * 1.
        assert_eq!(lin_form(&[0, 1], &[13, 7], &[7, 1]), LinForm::Scaled(1));
        // Broadcast (7,) over (13, 7): column index only.
        assert_eq!(
            lin_form(&[0, 1], &[13, 7], &[0, 1]),
            LinForm::Terms(vec![Term {
                div: 1,
                modulo: Some(7),
                weight: 1
            }])
        );
        // Scalar broadcast and size-1 axes.
        assert_eq!(lin_form(&[0, 1], &[13, 1], &[0, 5]), LinForm::Scaled(0));
        assert_eq!(lin_form(&[0, 1], &[1, 7], &[99, 3]), LinForm::Scaled(3));
        // Transposed.
        assert_eq!(
            lin_form(&[0, 1], &[3, 4], &[1, 3]),
            LinForm::Terms(vec![
                Term {
                    div: 4,
                    modulo: None,
                    weight: 1
                },
                Term {
                    div: 1,
                    modulo: Some(4),
                    weight: 3
                }
            ])
        );
    }
}
