//! The Executor: runs a ChunkGraph on a Backend. Independent chunks run in parallel (rayon);
//! a chunk's buffer is freed right after its last consumer finishes; peak bytes are tracked.

use crate::backend::Backend;
use crate::chunk::{ChunkData, ChunkGraph, ChunkId};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// Chunk tasks executed.
    pub tasks: usize,
    /// Peak bytes of live chunk outputs.
    pub peak_bytes: usize,
    /// Tasks per chunk-op name.
    pub per_op: Vec<(String, usize)>,
}

struct State {
    values: Vec<Option<Arc<ChunkData>>>,
    remaining_uses: Vec<usize>,
    pending_inputs: Vec<usize>,
    error: Option<Error>,
}

/// Runs every node of `cg` needed for `outputs` and returns the outputs' data.
///
/// # Errors
/// The first error a backend returns.
pub fn run(
    cg: &ChunkGraph,
    backend: &dyn Backend,
    outputs: &[ChunkId],
) -> Result<(HashMap<ChunkId, ChunkData>, RunStats)> {
    let n = cg.len();
    // Only nodes the outputs depend on.
    let mut needed = vec![false; n];
    let mut stack: Vec<ChunkId> = outputs.to_vec();
    while let Some(c) = stack.pop() {
        if !std::mem::replace(&mut needed[c.0 as usize], true) {
            stack.extend(cg.node(c).inputs.iter().copied());
        }
    }
    let mut consumers: Vec<Vec<u32>> = vec![vec![]; n];
    let mut remaining_uses = vec![0usize; n];
    let mut pending_inputs = vec![0usize; n];
    for (i, node) in cg.nodes.iter().enumerate() {
        if !needed[i] {
            continue;
        }
        for inp in &node.inputs {
            consumers[inp.0 as usize].push(i as u32);
            remaining_uses[inp.0 as usize] += 1;
            pending_inputs[i] += 1;
        }
    }
    let is_output: Vec<bool> = {
        let mut v = vec![false; n];
        for o in outputs {
            v[o.0 as usize] = true;
        }
        v
    };
    let state = Mutex::new(State {
        values: vec![None; n],
        remaining_uses,
        pending_inputs,
        error: None,
    });
    let live = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    let tasks = AtomicUsize::new(0);
    let per_op: Mutex<HashMap<&'static str, usize>> = Mutex::new(HashMap::new());
    let roots: Vec<u32> = (0..n as u32)
        .filter(|&i| needed[i as usize] && cg.nodes[i as usize].inputs.is_empty())
        .collect();

    fn task<'s>(s: &rayon::Scope<'s>, i: u32, ctx: &'s Ctx<'s>) {
        let node = &ctx.cg.nodes[i as usize];
        let inputs: Option<Vec<Arc<ChunkData>>> = {
            let st = ctx.state.lock().expect("executor state");
            if st.error.is_some() {
                return;
            }
            node.inputs
                .iter()
                .map(|c| st.values[c.0 as usize].clone())
                .collect()
        };
        let Some(inputs) = inputs else { return };
        let refs: Vec<&ChunkData> = inputs.iter().map(|a| a.as_ref()).collect();
        let result = ctx.backend.run_chunk(node, &refs);
        drop(inputs);
        let mut st = ctx.state.lock().expect("executor state");
        match result {
            Err(e) => {
                if st.error.is_none() {
                    st.error = Some(e);
                }
            }
            Ok(out) => {
                let bytes: usize = out.iter().map(|a| a.nbytes()).sum();
                let now = ctx.live.fetch_add(bytes, Ordering::SeqCst) + bytes;
                ctx.peak.fetch_max(now, Ordering::SeqCst);
                ctx.tasks.fetch_add(1, Ordering::Relaxed);
                *ctx.per_op
                    .lock()
                    .expect("stats")
                    .entry(node.op.name())
                    .or_default() += 1;
                st.values[i as usize] = Some(Arc::new(out));
                for inp in &node.inputs {
                    let k = inp.0 as usize;
                    st.remaining_uses[k] -= 1;
                    if st.remaining_uses[k] == 0 && !ctx.is_output[k] {
                        if let Some(v) = st.values[k].take() {
                            let b: usize = v.iter().map(|a| a.nbytes()).sum();
                            ctx.live.fetch_sub(b, Ordering::SeqCst);
                        }
                    }
                }
                for &c in &ctx.consumers[i as usize] {
                    st.pending_inputs[c as usize] -= 1;
                    if st.pending_inputs[c as usize] == 0 {
                        s.spawn(move |s| task(s, c, ctx));
                    }
                }
            }
        }
    }

    struct Ctx<'a> {
        cg: &'a ChunkGraph,
        backend: &'a dyn Backend,
        state: &'a Mutex<State>,
        consumers: &'a [Vec<u32>],
        is_output: &'a [bool],
        live: &'a AtomicUsize,
        peak: &'a AtomicUsize,
        tasks: &'a AtomicUsize,
        per_op: &'a Mutex<HashMap<&'static str, usize>>,
    }
    let ctx = Ctx {
        cg,
        backend,
        state: &state,
        consumers: &consumers,
        is_output: &is_output,
        live: &live,
        peak: &peak,
        tasks: &tasks,
        per_op: &per_op,
    };
    rayon::scope(|s| {
        for &r in &roots {
            let ctx = &ctx;
            s.spawn(move |s| task(s, r, ctx));
        }
    });
    let mut st = state.into_inner().expect("executor state");
    if let Some(e) = st.error.take() {
        return Err(e);
    }
    let mut out = HashMap::new();
    for o in outputs {
        if out.contains_key(o) {
            continue;
        }
        let v = st.values[o.0 as usize]
            .take()
            .map(|a| Arc::try_unwrap(a).unwrap_or_else(|a| (*a).clone()))
            .ok_or_else(|| Error::invalid("execute", format!("chunk {} was not computed", o.0)))?;
        out.insert(*o, v);
    }
    let mut per_op: Vec<(String, usize)> = per_op
        .into_inner()
        .expect("stats")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    per_op.sort();
    Ok((
        out,
        RunStats {
            tasks: tasks.into_inner(),
            peak_bytes: peak.into_inner(),
            per_op,
        },
    ))
}
