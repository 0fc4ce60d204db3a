//! The remote executor's plan and wire form (what the Ray executor sends), without Ray: how a
//! chunk graph is cut into groups, that user data travels as exactly the boxes the kernels
//! read, and that a bad or foreign spec is refused with an error. The conformance suite runs
//! whole through the same path (`cpu_remote` in tests/cpu.rs).

use std::sync::Arc;
use tessera::array::Region;
use tessera::external::ExternalArray;
use tessera::remote::{run_task, run_task_shared, ArgField, Loopback, RemotePlan};
use tessera::{Axes, DType, Error, HostArray, Session};

fn session() -> Session {
    tessera::cpu_session()
}

fn remote(s: &Session, group_bytes: u64) {
    s.set_remote(Some(Arc::new(Loopback::new(
        s.backend().clone(),
        group_bytes,
    ))));
}

fn plan_of(s: &Session, t: &tessera::Tensor, group_bytes: u64) -> RemotePlan {
    let (cg, tiled) = s.plan(&[t]).unwrap();
    RemotePlan::new(&cg, &tiled[0].chunks, group_bytes).unwrap()
}

/// A sum over 100 chunks of random data: with no merging, each partial kernel is a task; with
/// room for everything, the whole tree is one task; a middle budget merges only small groups.
#[test]
fn groups_follow_the_work_budget() {
    let s = session();
    let x = s
        .random(7)
        .rand(&[100_000], DType::F64)
        .with_chunks(&[1000])
        .unwrap();
    let y = (x + 1.0).sum(Axes::All, false).unwrap();
    let none = plan_of(&s, &y, 0);
    let all = plan_of(&s, &y, u64::MAX);
    let some = plan_of(&s, &y, 64 << 10);
    let nodes = |p: &RemotePlan| p.groups().iter().map(|g| g.nodes.len()).sum::<usize>();
    assert_eq!(
        nodes(&none),
        nodes(&all),
        "every chunk node is in one group"
    );
    assert!(none.groups().len() > 100, "{} groups", none.groups().len());
    assert_eq!(all.groups().len(), 1, "one task for the whole in-tree");
    assert!(
        some.groups().len() > 1 && some.groups().len() < none.groups().len(),
        "{} groups between {} and 1",
        some.groups().len(),
        none.groups().len()
    );
    for p in [&none, &all, &some] {
        for g in p.groups() {
            assert!(!g.on_driver, "no user data in this graph");
            for &k in &g.inputs {
                assert!(
                    p.groups()[k].nodes.last() < g.nodes.last(),
                    "groups are in topological order"
                );
            }
        }
        // Every merged group's work stays within the budget (a lone node may exceed it).
        if p.groups().len() > 1 {
            for g in p.groups().iter().filter(|g| g.nodes.len() > 1) {
                assert!(g.work_bytes <= 64 << 10 || p.groups().len() == none.groups().len());
            }
        }
    }
    // The three plans give the local run's bits.
    let local = y.execute().unwrap();
    for gb in [0, 64 << 10, u64::MAX] {
        let r = session();
        remote(&r, gb);
        let x = r
            .random(7)
            .rand(&[100_000], DType::F64)
            .with_chunks(&[1000])
            .unwrap();
        let got = (x + 1.0).sum(Axes::All, false).unwrap().execute().unwrap();
        assert_eq!(got, local, "group_bytes {gb}");
    }
}

/// A 60 x 80 f32 constant in a 3 x 5 grid of 20 x 16 chunks.
fn grid_data(s: &Session) -> tessera::Tensor {
    let data: Vec<f32> = (0..60 * 80).map(|i| (i % 97) as f32 * 0.5 - 3.0).collect();
    s.from_vec(data, &[60, 80])
        .unwrap()
        .with_chunks(&[20, 16])
        .unwrap()
}

/// A kernel that reads user data in place (a chunk of a 2-D constant, 2-D chunk grid) gets
/// exactly its box on the driver, not the span of rows around it.
#[test]
fn user_data_travels_as_boxes() {
    let s = session();
    let a = grid_data(&s);
    let y = a * 2.0 + 1.0;
    let p = plan_of(&s, &y, 0);
    let boxes: Vec<_> = p.groups().iter().filter(|g| g.on_driver).collect();
    assert_eq!(boxes.len(), 15, "one box per chunk (3 x 5)");
    for g in &boxes {
        assert_eq!(g.out_bytes, 20 * 16 * 4, "a box holds the chunk only");
        assert!(p
            .spec(p.groups().iter().position(|x| std::ptr::eq(x, *g)).unwrap())
            .is_err());
    }
    let local = y.execute().unwrap();
    let r = session();
    remote(&r, 0);
    let a = grid_data(&r);
    let got = (a * 2.0 + 1.0).execute().unwrap();
    assert_eq!(got, local);
}

/// Shared data (an object store's array) that fused kernels may only read in place: `read`
/// fails, so a task that copies it fails.
#[derive(Debug)]
struct InPlaceOnly(HostArray);

impl ExternalArray for InPlaceOnly {
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn read(&self, _: &Region) -> tessera::Result<HostArray> {
        Err(Error::InvalidArgument {
            op: "test".into(),
            msg: "copied instead of read in place".into(),
        })
    }
    fn describe(&self) -> String {
        "in-place-only test data".into()
    }
    fn flat(&self) -> Option<tessera::HostSlice<'_>> {
        tessera::HostSlice::of(&self.0)
    }
}

/// A worker reads a shared argument of a fused kernel in place (no copy: the data refuses to
/// be copied) with the bits of the copied run; ops other than fused kernels read a copy.
#[test]
fn shared_arguments_are_read_in_place() {
    let s = session();
    let a = grid_data(&s);
    let backend = s.backend().clone();
    for (name, y, fused) in [
        ("a * 2 + 1", a.clone() * 2.0 + 1.0, true),
        (
            "sort(a)",
            a.with_chunks(&[20, 80]).unwrap().sort(-1, false).unwrap(),
            false,
        ),
    ] {
        let p = plan_of(&s, &y, 0);
        let mut tasks = 0;
        for (g, grp) in p.groups().iter().enumerate() {
            if grp.on_driver || grp.inputs.len() != 1 || !p.groups()[grp.inputs[0]].on_driver {
                continue;
            }
            let arg = p.run_on_driver(grp.inputs[0], &[]).unwrap();
            assert_eq!(arg.len(), 1, "{name}");
            let spec = p.spec(g).unwrap();
            let copied = run_task(&spec, backend.as_ref(), vec![arg.clone()]).unwrap();
            let shared = vec![vec![ArgField::Shared(Arc::new(InPlaceOnly(
                arg[0].clone(),
            )))]];
            match run_task_shared(&spec, backend.as_ref(), shared) {
                Ok(v) => {
                    assert!(fused, "{name}: read without a copy");
                    assert_eq!(v, copied, "{name}: in place gives the copy's bits");
                }
                Err(e) => {
                    assert!(!fused, "{name}: {e}");
                    assert!(e.to_string().contains("copied instead"), "{name}: {e}");
                }
            }
            tasks += 1;
        }
        assert!(tasks > 0, "{name}: tasks reading driver data");
    }
}

/// A spec that is not one, or of another format version, is an error, never a panic.
#[test]
fn bad_specs_are_refused() {
    let s = session();
    let x = s.random(1).rand(&[1000], DType::F32);
    let y = x * 3.0;
    let p = plan_of(&s, &y, 0);
    let g = p.groups().iter().position(|g| !g.on_driver).unwrap();
    let spec = p.spec(g).unwrap();
    let backend = s.backend().clone();
    let ok = run_task(&spec, backend.as_ref(), vec![]).unwrap();
    assert_eq!(ok[0], y.execute().unwrap());
    // Another version (the first byte is the version).
    let mut other = spec.clone();
    other[0] = other[0].wrapping_add(1);
    match run_task(&other, backend.as_ref(), vec![]) {
        Err(Error::Serde(m)) => assert!(m.contains("version"), "{m}"),
        r => panic!("expected a version error, got {r:?}"),
    }
    for bad in [
        &[][..],
        &[1, 255, 255, 255, 255, 255][..],
        &spec[..spec.len() / 2],
    ] {
        assert!(
            matches!(
                run_task(bad, backend.as_ref(), vec![]),
                Err(Error::Serde(_))
            ),
            "{bad:?}"
        );
    }
    // A task missing its arguments names what is missing.
    let z = (s.random(2).rand(&[1000], DType::F32) + y.clone())
        .sum(Axes::All, false)
        .unwrap();
    let p = plan_of(&s, &z, 0);
    let needs = p
        .groups()
        .iter()
        .position(|g| !g.inputs.is_empty() && !g.on_driver)
        .unwrap();
    match run_task(&p.spec(needs).unwrap(), backend.as_ref(), vec![]) {
        Err(Error::InvalidArgument { msg, .. }) => assert!(msg.contains("missing input"), "{msg}"),
        r => panic!("expected a missing-input error, got {r:?}"),
    }
    let _ = HostArray::zeros(DType::F32, &[1]);
}

/// A task with a fused kernel is worth a GPU; one made only of host steps of the GPU backends
/// (a sort's buckets, combines) is not.
#[test]
fn device_work_marks_gpu_tasks() {
    let s = session();
    let x = s
        .random(3)
        .rand(&[4000], DType::F64)
        .with_chunks(&[500])
        .unwrap();
    let y = (&x * 2.0).sum(Axes::All, false).unwrap();
    let p = plan_of(&s, &y, 0);
    let fused: Vec<_> = p
        .groups()
        .iter()
        .enumerate()
        .filter(|(g, _)| p.label(*g).starts_with("fused"))
        .collect();
    assert!(!fused.is_empty());
    assert!(fused.iter().all(|(_, g)| g.device_work));
    assert!(p
        .groups()
        .iter()
        .enumerate()
        .filter(|(g, _)| p.label(*g).starts_with("reduce_"))
        .all(|(_, g)| !g.device_work));
    let sorted = x.sort(0, false).unwrap();
    let p = plan_of(&s, &sorted, 0);
    assert!(p
        .groups()
        .iter()
        .enumerate()
        .filter(|(g, _)| p.label(*g).starts_with("bucket_sort"))
        .all(|(_, g)| !g.device_work));
}
