//! The Scheduler: ChunkGraph + memory budgets -> a `Plan`, the whole run decided before it
//! starts (the graph is static). Stages, in order:
//!
//! 1. Order: depth-first post-order from the outputs (a consumer runs as soon as its inputs
//!    exist, so they die early), or breadth-first for comparison.
//! 2. Placement: a kernel goes to the device holding most of its input bytes, unless that
//!    device is ahead of the least-loaded one by more than a small slack; a source kernel goes
//!    where the other inputs of its consumer already are (Mars's initial node assignment), else
//!    to the least-loaded device.
//! 3. Memory: a simulation of every tier walks the order and emits `Step`s. Inputs are brought
//!    to the kernel's device (from a peer device, host, or disk via host); the next kernel's
//!    inputs are prefetched while the current one runs when they fit without eviction; when a
//!    tier is full the resident chunk whose next use is furthest away is evicted (Belady),
//!    device -> host -> disk, written only when no other copy exists; every copy is freed
//!    after the chunk's last use.
//!
//! Each step lists the earlier steps it waits for: the steps that made its inputs, the readers
//! a free must outlive, and the previous free on the tier it allocates in. Because every
//! allocation waits for all earlier frees on its tier, no interleaving of the lanes can use
//! more of a tier than the simulation did, and the simulation never exceeds a budget.

use crate::chunk::{ChunkGraph, ChunkId, ChunkNode, ChunkOp};
use crate::error::{Error, Result, Tier};
use crate::ir::ReduceKind;
use crate::op::ReduceOp;
use crate::storage::Order;
use smallvec::SmallVec;
use std::collections::{BTreeSet, VecDeque};

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run a chunk's kernel on a device; its inputs are resident there.
    Run {
        /// The chunk computed.
        node: ChunkId,
        /// The device.
        dev: usize,
    },
    /// Copy a chunk between tiers (host->device, device->host, device->device, host->disk =
    /// spill, disk->host = unspill). The source copy stays until a `Free`.
    Copy {
        /// The chunk.
        chunk: ChunkId,
        /// Where it is.
        from: Tier,
        /// Where it goes.
        to: Tier,
    },
    /// Drop a chunk's copy on a tier.
    Free {
        /// The chunk.
        chunk: ChunkId,
        /// The tier.
        tier: Tier,
    },
}

/// Which worker executes a step: steps of one lane run in plan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// A device's kernels.
    Compute(usize),
    /// Copies into and out of a device.
    Copy(usize),
    /// Spill writes and reads.
    Disk,
    /// Frees on a tier.
    Free(Tier),
}

/// Budgets of the tiers, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Budgets {
    /// Per device.
    pub device: Vec<u64>,
    /// Host.
    pub host: u64,
    /// Disk.
    pub disk: u64,
}

/// The whole run, decided before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Steps in plan order.
    pub steps: Vec<Step>,
    dep_start: Vec<u32>,
    dep_list: Vec<u32>,
    /// Device of each chunk's kernel (`None`: not needed for the outputs).
    pub placement: Vec<Option<u32>>,
    /// Kernel order.
    pub order: Vec<ChunkId>,
    /// The outputs.
    pub outputs: Vec<ChunkId>,
    /// The budgets planned against.
    pub budgets: Budgets,
    /// Peak bytes per tier in the simulation: devices, then host, then disk.
    pub planned_peak: Vec<u64>,
}

impl Plan {
    /// The steps step `i` waits for.
    pub fn deps(&self, i: usize) -> &[u32] {
        &self.dep_list[self.dep_start[i] as usize..self.dep_start[i + 1] as usize]
    }
    /// Number of devices.
    pub fn devices(&self) -> usize {
        self.budgets.device.len()
    }
    /// The lane of a step.
    pub fn lane(&self, i: usize) -> Lane {
        match self.steps[i] {
            Step::Run { dev, .. } => Lane::Compute(dev),
            Step::Copy {
                to: Tier::Device(d),
                ..
            } => Lane::Copy(d),
            Step::Copy {
                from: Tier::Device(d),
                ..
            } => Lane::Copy(d),
            Step::Copy { .. } => Lane::Disk,
            Step::Free { tier, .. } => Lane::Free(tier),
        }
    }
    /// Count of steps by kind: (runs, copies, frees).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for s in &self.steps {
            match s {
                Step::Run { .. } => c.0 += 1,
                Step::Copy { .. } => c.1 += 1,
                Step::Free { .. } => c.2 += 1,
            }
        }
        c
    }
}

/// Bytes a chunk's output can take (an upper bound: arg partials carry an i64 index field).
pub fn planned_bytes(node: &ChunkNode) -> u64 {
    // Saturating: the sizing of a run asks about chunks of any size, and a byte count past
    // u64 must read as "too large", never wrap.
    let n = node
        .shape
        .iter()
        .fold(1u64, |a, &x| a.saturating_mul(x as u64));
    let d = node.dtype.size() as u64;
    let two = |op: &ReduceOp| matches!(op, ReduceOp::Var | ReduceOp::Std);
    match &node.op {
        ChunkOp::ArgPartial { .. } | ChunkOp::ArgCombine { .. } => n.saturating_mul(d + 8),
        ChunkOp::ReducePartial { op, .. } | ChunkOp::ReduceCombine { op, .. } if two(op) => {
            n.saturating_mul(2 * d)
        }
        ChunkOp::Fused { ir, .. } => match ir.reduce.as_ref().map(|r| r.kind) {
            Some(ReduceKind::Arg(_)) => n.saturating_mul(d + 8),
            Some(ReduceKind::Reduce(op)) if two(&op) => n.saturating_mul(2 * d),
            _ => n.saturating_mul(d),
        },
        _ => n.saturating_mul(d),
    }
}

/// Spill-file overhead bound per chunk (header: field count, dtypes, shapes; checksum).
pub const SPILL_OVERHEAD: u64 = 1024;

const NEVER: u32 = u32::MAX;

/// Which nodes `outputs` depend on (themselves included).
pub(crate) fn needed_nodes(cg: &ChunkGraph, outputs: &[ChunkId]) -> Vec<bool> {
    let mut needed = vec![false; cg.len()];
    let mut stack: Vec<ChunkId> = outputs.to_vec();
    while let Some(c) = stack.pop() {
        if !std::mem::replace(&mut needed[c.0 as usize], true) {
            stack.extend(cg.node(c).inputs.iter().copied());
        }
    }
    needed
}

/// The kernel order for `outputs`.
pub fn order(cg: &ChunkGraph, outputs: &[ChunkId], how: Order) -> Vec<ChunkId> {
    let n = cg.len();
    match how {
        Order::DepthFirst => {
            let mut state = vec![0u8; n]; // 0 new, 1 open, 2 done
            let mut out = Vec::new();
            // Field extractions run right after the node they read: a node split into many
            // fields (a sample sort's segment, one field per bucket) is then read once while
            // it is in memory, instead of being kept or reloaded for each consumer of a field.
            let needed = needed_nodes(cg, outputs);
            let mut fields: Vec<Vec<u32>> = vec![Vec::new(); n];
            for (i, node) in cg.nodes.iter().enumerate() {
                if needed[i] && matches!(node.op, crate::chunk::ChunkOp::Field { .. }) {
                    if let [src] = node.inputs[..] {
                        fields[src.0 as usize].push(i as u32);
                    }
                }
            }
            for &o in outputs {
                let mut stack = vec![(o, 0usize)];
                while let Some((c, k)) = stack.pop() {
                    let i = c.0 as usize;
                    if k == 0 {
                        if state[i] != 0 {
                            continue;
                        }
                        state[i] = 1;
                    }
                    let inputs = &cg.node(c).inputs;
                    if k < inputs.len() {
                        stack.push((c, k + 1));
                        if state[inputs[k].0 as usize] == 0 {
                            stack.push((inputs[k], 0));
                        }
                    } else {
                        state[i] = 2;
                        out.push(c);
                        for &f in &fields[i] {
                            if state[f as usize] == 0 {
                                state[f as usize] = 2;
                                out.push(ChunkId(f));
                            }
                        }
                    }
                }
            }
            out
        }
        Order::BreadthFirst => {
            let needed = needed_nodes(cg, outputs);
            let mut pending = vec![0usize; n];
            let mut consumers: Vec<Vec<u32>> = vec![vec![]; n];
            for (i, node) in cg.nodes.iter().enumerate() {
                if needed[i] {
                    for inp in &node.inputs {
                        pending[i] += 1;
                        consumers[inp.0 as usize].push(i as u32);
                    }
                }
            }
            let mut q: VecDeque<u32> = (0..n as u32)
                .filter(|&i| needed[i as usize] && pending[i as usize] == 0)
                .collect();
            let mut out = Vec::new();
            while let Some(i) = q.pop_front() {
                out.push(ChunkId(i));
                for &c in &consumers[i as usize] {
                    pending[c as usize] -= 1;
                    if pending[c as usize] == 0 {
                        q.push_back(c);
                    }
                }
            }
            out
        }
    }
}

/// Places each kernel of `order` on one of `devices` devices.
pub fn place(cg: &ChunkGraph, order: &[ChunkId], devices: usize) -> Vec<Option<u32>> {
    let mut placement: Vec<Option<u32>> = vec![None; cg.len()];
    if devices <= 1 {
        for c in order {
            placement[c.0 as usize] = Some(0);
        }
        return placement;
    }
    // Consumers within the order, for the initial assignment of sources.
    let mut in_order = vec![false; cg.len()];
    for c in order {
        in_order[c.0 as usize] = true;
    }
    let mut consumers: Vec<Vec<u32>> = vec![vec![]; cg.len()];
    for c in order {
        for inp in &cg.node(*c).inputs {
            consumers[inp.0 as usize].push(c.0);
        }
    }
    let mut load = vec![0u64; devices];
    let mut transfer = vec![0u64; devices];
    for (k, &c) in order.iter().enumerate() {
        let node = cg.node(c);
        let min_load = *load.iter().min().expect("devices");
        // Allowed imbalance: 2 kernels plus 1/8 of the mean load.
        let slack = 2 + k as u64 / (8 * devices as u64);
        let fair = |d: usize| load[d] <= min_load + slack;
        let least = (0..devices).min_by_key(|&d| (load[d], d)).expect("devices");
        let d = if node.inputs.is_empty() {
            consumers[c.0 as usize]
                .iter()
                .flat_map(|&u| cg.nodes[u as usize].inputs.iter())
                .find_map(|i| placement[i.0 as usize])
                .map(|d| d as usize)
                .filter(|&d| fair(d))
                .unwrap_or(least)
        } else {
            transfer.iter_mut().for_each(|t| *t = 0);
            for inp in &node.inputs {
                let b = planned_bytes(cg.node(*inp));
                if let Some(p) = placement[inp.0 as usize] {
                    for (d, t) in transfer.iter_mut().enumerate() {
                        if d != p as usize {
                            *t += b;
                        }
                    }
                }
            }
            (0..devices)
                .filter(|&d| fair(d))
                .min_by_key(|&d| (transfer[d], load[d], d))
                .unwrap_or(least)
        };
        placement[c.0 as usize] = Some(d as u32);
        load[d] += 1;
    }
    placement
}

/// One copy of a chunk and the steps that touch it.
struct Loc {
    tier: usize,
    creator: u32,
    readers: SmallVec<[u32; 3]>,
}

struct Sim<'a> {
    cg: &'a ChunkGraph,
    budget: Vec<u64>,
    used: Vec<u64>,
    peak: Vec<u64>,
    locs: Vec<SmallVec<[Loc; 1]>>,
    // Tiers whose budget could be exceeded: only they keep Belady sets (a tier that holds every
    // chunk of the graph at once never evicts).
    tracked: Vec<bool>,
    bytes: Vec<u64>,
    // Belady sets per tier: (next use, chunk).
    resident: Vec<BTreeSet<(u32, u32)>>,
    next_use: Vec<u32>,
    // Positions in the order where each chunk is read, as CSR: uses of c are
    // use_list[use_start[c]..use_start[c + 1]]; use_ptr[c] indexes the next one.
    use_start: Vec<u32>,
    use_list: Vec<u32>,
    use_ptr: Vec<u32>,
    last_free: Vec<Option<u32>>,
    steps: Vec<Step>,
    dep_start: Vec<u32>,
    dep_list: Vec<u32>,
    ndev: usize,
}

fn tier_of(key: usize) -> Tier {
    match key {
        0 => Tier::Host,
        1 => Tier::Disk,
        k => Tier::Device(k - 2),
    }
}

impl Sim<'_> {
    fn has(&self, c: u32, tier: usize) -> bool {
        self.locs[c as usize].iter().any(|l| l.tier == tier)
    }
    fn loc_mut(&mut self, c: u32, tier: usize) -> &mut Loc {
        self.locs[c as usize]
            .iter_mut()
            .find(|l| l.tier == tier)
            .expect("resident copy")
    }
    fn cost(&self, c: u32, tier: usize) -> u64 {
        if tier == 1 {
            self.bytes[c as usize] + SPILL_OVERHEAD
        } else {
            self.bytes[c as usize]
        }
    }
    fn emit(&mut self, s: Step, deps: &[u32]) -> u32 {
        self.steps.push(s);
        self.dep_list.extend_from_slice(deps);
        self.dep_start.push(self.dep_list.len() as u32);
        (self.steps.len() - 1) as u32
    }
    fn add_copy(&mut self, c: u32, tier: usize, creator: u32) {
        let cost = self.cost(c, tier);
        self.used[tier] += cost;
        self.peak[tier] = self.peak[tier].max(self.used[tier]);
        self.locs[c as usize].push(Loc {
            tier,
            creator,
            readers: SmallVec::new(),
        });
        if self.tracked[tier] {
            self.resident[tier].insert((self.next_use[c as usize], c));
        }
    }
    fn free(&mut self, c: u32, tier: usize) {
        let i = self.locs[c as usize]
            .iter()
            .position(|l| l.tier == tier)
            .expect("resident copy");
        let loc = self.locs[c as usize].swap_remove(i);
        let mut deps = loc.readers;
        deps.push(loc.creator);
        deps.extend(self.last_free[tier]);
        let s = self.emit(
            Step::Free {
                chunk: ChunkId(c),
                tier: tier_of(tier),
            },
            &deps,
        );
        self.last_free[tier] = Some(s);
        self.used[tier] -= self.cost(c, tier);
        if self.tracked[tier] {
            self.resident[tier].remove(&(self.next_use[c as usize], c));
        }
    }
    /// Makes room for `bytes` on `tier`, evicting by furthest next use; `pinned` stay.
    fn reserve(&mut self, tier: usize, bytes: u64, pinned: &[u32]) -> Result<()> {
        if bytes > self.budget[tier] {
            return Err(Error::OutOfMemory {
                tier: tier_of(tier),
                requested: bytes,
                available: self.budget[tier],
            });
        }
        while self.used[tier] + bytes > self.budget[tier] {
            let victim = self.resident[tier]
                .iter()
                .rev()
                .map(|&(_, c)| c)
                .find(|c| !pinned.contains(c));
            let Some(v) = victim else {
                return Err(Error::OutOfMemory {
                    tier: tier_of(tier),
                    requested: bytes,
                    available: self.budget[tier].saturating_sub(self.used[tier]),
                });
            };
            self.evict(v, tier, pinned)?;
        }
        Ok(())
    }
    /// A chunk read from data outside Tessera (a file, a numpy buffer): evicting its last copy
    /// costs no spill write, since running its source again reads it back.
    fn rereadable(&self, c: u32) -> bool {
        matches!(self.cg.nodes[c as usize].op, ChunkOp::External { .. })
    }
    fn evict(&mut self, c: u32, tier: usize, pinned: &[u32]) -> Result<()> {
        let elsewhere = self.locs[c as usize].iter().any(|l| l.tier != tier);
        if !elsewhere && !self.rereadable(c) {
            let down = match tier {
                0 => 1,
                1 => {
                    return Err(Error::OutOfMemory {
                        tier: Tier::Disk,
                        requested: self.cost(c, 1),
                        available: self.budget[1].saturating_sub(self.used[1]),
                    })
                }
                _ => 0,
            };
            let mut pin = pinned.to_vec();
            pin.push(c);
            self.copy(c, tier, down, &pin)?;
        }
        self.free(c, tier);
        Ok(())
    }
    /// Copies `c` from `from` to `to` (reserving room first).
    fn copy(&mut self, c: u32, from: usize, to: usize, pinned: &[u32]) -> Result<u32> {
        let cost = self.cost(c, to);
        self.reserve(to, cost, pinned)?;
        let src = self.loc_mut(c, from).creator;
        let deps = [src, self.last_free[to].unwrap_or(src)];
        let s = self.emit(
            Step::Copy {
                chunk: ChunkId(c),
                from: tier_of(from),
                to: tier_of(to),
            },
            &deps,
        );
        self.loc_mut(c, from).readers.push(s);
        self.add_copy(c, to, s);
        Ok(s)
    }
    /// Brings `c` to device tier `dt`.
    fn bring(&mut self, c: u32, dt: usize, pinned: &[u32]) -> Result<()> {
        if self.has(c, dt) {
            return Ok(());
        }
        let peer = (2..2 + self.ndev).find(|&t| self.has(c, t));
        if let Some(p) = peer {
            self.copy(c, p, dt, pinned)?;
        } else if self.locs[c as usize].is_empty() && self.rereadable(c) {
            // Evicted without a spill: its source runs again, on this device.
            let bytes = self.bytes[c as usize];
            self.reserve(dt, bytes, pinned)?;
            let deps: SmallVec<[u32; 1]> = self.last_free[dt].into_iter().collect();
            let s = self.emit(
                Step::Run {
                    node: ChunkId(c),
                    dev: dt - 2,
                },
                &deps,
            );
            self.add_copy(c, dt, s);
        } else {
            if !self.has(c, 0) {
                if !self.has(c, 1) {
                    return Err(Error::invalid(
                        "schedule",
                        format!("chunk {c} is needed but resident nowhere"),
                    ));
                }
                self.copy(c, 1, 0, pinned)?;
            }
            self.copy(c, 0, dt, pinned)?;
        }
        Ok(())
    }
    /// Moves `c`'s next use past position `pos`, updating the Belady sets.
    fn advance(&mut self, c: u32, pos: u32) {
        let ci = c as usize;
        let old = self.next_use[ci];
        let uses = &self.use_list[self.use_start[ci] as usize..self.use_start[ci + 1] as usize];
        let mut p = self.use_ptr[ci] as usize;
        while p < uses.len() && uses[p] <= pos {
            p += 1;
        }
        self.use_ptr[ci] = p as u32;
        let new = uses.get(p).copied().unwrap_or(NEVER);
        if new != old {
            self.next_use[ci] = new;
            for l in &self.locs[ci] {
                if self.tracked[l.tier] {
                    self.resident[l.tier].remove(&(old, c));
                    self.resident[l.tier].insert((new, c));
                }
            }
        }
    }
}

/// Plans the run of `outputs` on `budgets.device.len()` devices.
///
/// # Errors
/// `OutOfMemory` when a kernel's inputs and output cannot fit a device at once, or the disk
/// budget is exhausted.
pub fn plan(cg: &ChunkGraph, outputs: &[ChunkId], budgets: Budgets, how: Order) -> Result<Plan> {
    let ndev = budgets.device.len().max(1);
    let order = order(cg, outputs, how);
    let placement = place(cg, &order, ndev);
    let n = cg.len();
    let mut pos = vec![NEVER; n];
    for (k, c) in order.iter().enumerate() {
        pos[c.0 as usize] = k as u32;
    }
    let mut is_output = vec![false; n];
    for o in outputs {
        is_output[o.0 as usize] = true;
    }
    // Uses of each chunk in order (CSR); outputs are kept to the end: their last "use" is
    // after every kernel.
    let end = order.len() as u32;
    let mut count = vec![0u32; n + 1];
    for c in &order {
        for inp in &cg.node(*c).inputs {
            count[inp.0 as usize + 1] += 1;
        }
    }
    for (i, &o) in is_output.iter().enumerate() {
        count[i + 1] += u32::from(o);
    }
    for i in 0..n {
        count[i + 1] += count[i];
    }
    let use_start = count.clone();
    let mut fill = count;
    // Slots of repeated inputs of one kernel stay NEVER at the tail of their range, after
    // every real use, so they are never reached.
    let mut use_list = vec![NEVER; use_start[n] as usize];
    for (k, c) in order.iter().enumerate() {
        for inp in &cg.node(*c).inputs {
            let i = inp.0 as usize;
            if fill[i] > use_start[i] && use_list[fill[i] as usize - 1] == k as u32 {
                continue;
            }
            use_list[fill[i] as usize] = k as u32;
            fill[i] += 1;
        }
    }
    for (i, &o) in is_output.iter().enumerate() {
        if o {
            use_list[fill[i] as usize] = end;
            fill[i] += 1;
        }
    }
    let mut budget = vec![budgets.host, budgets.disk];
    budget.extend(budgets.device.iter().copied());
    if budgets.device.is_empty() {
        budget.push(u64::MAX);
    }
    let tiers = budget.len();
    let all_bytes: u64 = order
        .iter()
        .map(|c| planned_bytes(cg.node(*c)) + SPILL_OVERHEAD)
        .sum();
    let tracked: Vec<bool> = budget.iter().map(|&b| all_bytes > b).collect();
    let mut sim = Sim {
        cg,
        budget,
        used: vec![0; tiers],
        peak: vec![0; tiers],
        locs: (0..n).map(|_| SmallVec::new()).collect(),
        tracked,
        bytes: cg.nodes.iter().map(planned_bytes).collect(),
        resident: vec![BTreeSet::new(); tiers],
        next_use: (0..n)
            .map(|i| {
                if use_start[i] < use_start[i + 1] {
                    use_list[use_start[i] as usize]
                } else {
                    NEVER
                }
            })
            .collect(),
        use_start,
        use_list,
        use_ptr: vec![0; n],
        last_free: vec![None; tiers],
        steps: Vec::with_capacity(order.len() * 2),
        dep_start: vec![0],
        dep_list: Vec::with_capacity(order.len() * 4),
        ndev,
    };
    let mut pinned: Vec<u32> = Vec::new();
    let mut deps: Vec<u32> = Vec::new();
    let mut tiers_buf: Vec<usize> = Vec::new();
    for (k, &c) in order.iter().enumerate() {
        let node = sim.cg.node(c);
        let dev = placement[c.0 as usize].expect("placed") as usize;
        let dt = 2 + dev;
        pinned.clear();
        pinned.extend(node.inputs.iter().map(|i| i.0));
        pinned.push(c.0);
        for inp in &node.inputs {
            sim.bring(inp.0, dt, &pinned)?;
        }
        let out = sim.bytes[c.0 as usize];
        sim.reserve(dt, out, &pinned)?;
        // Prefetch the next kernel's inputs while this one runs, where they fit as they are.
        if let Some(&next) = order.get(k + 1) {
            let ndt = 2 + placement[next.0 as usize].expect("placed") as usize;
            for inp in &sim.cg.node(next).inputs {
                let i = inp.0;
                let room = sim.budget[ndt] - sim.used[ndt].min(sim.budget[ndt]);
                let reserve_out = if ndt == dt { out } else { 0 };
                let from_mem = (2..2 + ndev).any(|t| sim.has(i, t)) || sim.has(i, 0);
                if !sim.has(i, ndt) && from_mem && sim.bytes[i as usize] + reserve_out <= room {
                    pinned.push(i);
                    sim.bring(i, ndt, &pinned)?;
                }
            }
        }
        deps.clear();
        for i in &node.inputs {
            let cr = sim.loc_mut(i.0, dt).creator;
            deps.push(cr);
        }
        deps.extend(sim.last_free[dt]);
        let s = sim.emit(Step::Run { node: c, dev }, &deps);
        for inp in &node.inputs {
            sim.loc_mut(inp.0, dt).readers.push(s);
        }
        sim.add_copy(c.0, dt, s);
        sim.advance(c.0, k as u32);
        let inputs = &node.inputs;
        for (j, inp) in inputs.iter().enumerate() {
            if inputs[..j].contains(inp) {
                continue;
            }
            sim.advance(inp.0, k as u32);
            if sim.next_use[inp.0 as usize] == NEVER && !is_output[inp.0 as usize] {
                tiers_buf.clear();
                tiers_buf.extend(sim.locs[inp.0 as usize].iter().map(|l| l.tier));
                for &t in &tiers_buf {
                    sim.free(inp.0, t);
                }
            }
        }
    }
    let mut planned_peak: Vec<u64> = sim.peak[2..].to_vec();
    planned_peak.push(sim.peak[0]);
    planned_peak.push(sim.peak[1]);
    let (dep_start, dep_list) = (sim.dep_start, sim.dep_list);
    Ok(Plan {
        steps: sim.steps,
        dep_start,
        dep_list,
        placement,
        order,
        outputs: outputs.to_vec(),
        budgets,
        planned_peak,
    })
}

/// Index of a tier in per-tier vectors (`planned_peak`, executor metrics): devices first,
/// then host, then disk.
pub fn tier_index(t: Tier, devices: usize) -> usize {
    match t {
        Tier::Device(d) => d,
        Tier::Host => devices,
        Tier::Disk => devices + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{DType, Scalar};
    use crate::op::BinaryOp;

    /// s0..s5 sources (100 bytes each), t1 = s0 + s1, t_k = t_{k-1} + s_k, u = t5 + s0.
    fn chain() -> (ChunkGraph, ChunkId, ChunkId) {
        let mut cg = ChunkGraph::default();
        let src = |cg: &mut ChunkGraph| {
            cg.push(ChunkNode {
                op: ChunkOp::Full {
                    value: Scalar::Float(1.0),
                },
                inputs: Default::default(),
                shape: [25].into_iter().collect(),
                dtype: DType::F32,
            })
        };
        let add = |cg: &mut ChunkGraph, a: ChunkId, b: ChunkId| {
            cg.push(ChunkNode {
                op: ChunkOp::Binary(BinaryOp::Add),
                inputs: [a, b].into_iter().collect(),
                shape: [25].into_iter().collect(),
                dtype: DType::F32,
            })
        };
        let s0 = src(&mut cg);
        let s1 = src(&mut cg);
        let mut t = add(&mut cg, s0, s1);
        for _ in 2..6 {
            let s = src(&mut cg);
            t = add(&mut cg, t, s);
        }
        let u = add(&mut cg, t, s0);
        (cg, s0, u)
    }

    fn budgets(device: u64) -> Budgets {
        Budgets {
            device: vec![device],
            host: 1 << 20,
            disk: 1 << 20,
        }
    }

    #[test]
    fn fits_without_copies_when_the_budget_allows() {
        let (cg, _, u) = chain();
        let p = plan(&cg, &[u], budgets(400), Order::DepthFirst).unwrap();
        let (runs, copies, _) = p.counts();
        assert_eq!(runs, cg.len());
        assert_eq!(copies, 0);
        assert!(p.planned_peak[0] <= 400);
        // Every step waits only for earlier steps.
        for i in 0..p.steps.len() {
            assert!(p.deps(i).iter().all(|&d| (d as usize) < i), "step {i}");
        }
    }

    #[test]
    fn belady_evicts_the_chunk_used_furthest_ahead() {
        let (cg, s0, u) = chain();
        let p = plan(&cg, &[u], budgets(300), Order::DepthFirst).unwrap();
        assert!(p.planned_peak[0] <= 300, "{:?}", p.planned_peak);
        // s0 waits for the last kernel: it is the one moved out, and brought back for u.
        let copies: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Copy { .. }))
            .collect();
        assert_eq!(
            copies.first(),
            Some(&&Step::Copy {
                chunk: s0,
                from: Tier::Device(0),
                to: Tier::Host
            })
        );
        assert!(copies
            .iter()
            .all(|s| matches!(s, Step::Copy { chunk, .. } if *chunk == s0)));
        assert!(p.steps.contains(&Step::Copy {
            chunk: s0,
            from: Tier::Host,
            to: Tier::Device(0)
        }));
    }

    #[test]
    fn a_kernel_larger_than_its_device_is_out_of_memory() {
        let (cg, _, u) = chain();
        let e = plan(&cg, &[u], budgets(250), Order::DepthFirst).unwrap_err();
        assert!(
            matches!(
                e,
                Error::OutOfMemory {
                    tier: Tier::Device(0),
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn depth_first_runs_each_consumer_right_after_its_inputs() {
        let (cg, _, u) = chain();
        let df = order(&cg, &[u], Order::DepthFirst);
        let bf = order(&cg, &[u], Order::BreadthFirst);
        assert_eq!(df.len(), cg.len());
        assert_eq!(bf.len(), cg.len());
        // Breadth-first starts with every source; depth-first interleaves them.
        assert!(bf[..6].iter().all(|c| cg.node(*c).inputs.is_empty()));
        assert!(!cg.node(df[2]).inputs.is_empty());
    }
}
