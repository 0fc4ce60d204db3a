//! The parts of the CUDA backend that need no GPU: NVRTC compiles the library kernels and
//! generated kernels to PTX for sm_90 (and ptxas assembles them where it exists), the PTX
//! cache serves repeats from memory and from disk and ignores damaged files, and opening the
//! backend without a driver is a typed error. Without NVRTC the compile tests print
//! `skipped: <reason>`.

use std::path::PathBuf;
use tessera_cuda::{nvrtc_available, CudaBackend, PtxCache};
use tessera_kernels::lower;
use tessera_kernels::{kernel_name, CudaRenderer};
use tessera_runtime::ir::{ReduceKind, Renderer};
use tessera_runtime::op::ReduceOp;
use tessera_runtime::{DType, Error};

const LIBRARY: &str = include_str!("../../../shaders/library.cu");
const SORT: &str = include_str!("../../../shaders/sort.cu");

fn nvrtc() -> bool {
    match nvrtc_available() {
        Ok(()) => true,
        Err(e) => {
            println!("skipped: {e}");
            false
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-ptx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ptxas() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TESSERA_PTXAS") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file())
}

/// Assembles PTX for sm_90 with ptxas where it exists.
fn assemble(name: &str, ptx: &str) {
    let Some(ptxas) = ptxas() else {
        println!("ptxas not found: PTX of {name} not assembled");
        return;
    };
    let dir = scratch(&format!("as-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("k.ptx");
    std::fs::write(&src, ptx).unwrap();
    let out = std::process::Command::new(&ptxas)
        .arg("-arch=sm_90")
        .arg(&src)
        .arg("-o")
        .arg(dir.join("k.cubin"))
        .output()
        .expect("run ptxas");
    assert!(
        out.status.success(),
        "ptxas rejected {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn library_kernels_compile_for_sm_90() {
    if !nvrtc() {
        return;
    }
    let cache = PtxCache::new(None);
    let ptx = cache
        .get("tessera_copy_1_32", LIBRARY, "compute_90")
        .expect("library.cu compiles");
    for w in [1, 4, 8] {
        for k in [
            format!("tessera_copy_{w}_32"),
            format!("tessera_copy_{w}_64"),
            format!("tessera_transpose2d_{w}"),
            format!("tessera_reshape_gather_{w}"),
        ] {
            assert!(ptx.contains(&format!(".entry {k}")), "{k} missing");
        }
    }
    // The by-value argument structs have the sizes of the Rust mirrors (ops.rs unit test).
    assert!(
        ptx.contains("tessera_copy_4_32_param_2[224]"),
        "CopyArgs is 224 bytes"
    );
    assert!(
        ptx.contains("tessera_reshape_gather_4_param_2[400]"),
        "GatherArgs is 400 bytes"
    );
    assemble("library", &ptx);
}

/// The GPU lane sort (shaders/sort.cu; its results are checked on the CPU by
/// kernels/tests/cuda_sort_emu.rs) compiles for sm_90, every dtype's entry point is there, and
/// its shared memory fits a block (2048 keys and positions).
#[test]
fn sort_kernels_compile_for_sm_90() {
    if !nvrtc() {
        return;
    }
    let ptx = PtxCache::new(None)
        .get("tessera_lane_sort_f32", SORT, "compute_90")
        .expect("sort.cu compiles");
    for d in ["f32", "f64", "i32", "i64"] {
        assert!(
            ptx.contains(&format!(".entry tessera_lane_sort_{d}(")),
            "tessera_lane_sort_{d} missing"
        );
    }
    assemble("sort", &ptx);
}

#[test]
fn ptx_cache_serves_memory_then_disk_and_recompiles_damage() {
    if !nvrtc() {
        return;
    }
    let dir = scratch("cache");
    let ir = lower::reduce_ir(
        DType::F32,
        &[64, 1000],
        ReduceKind::Reduce(ReduceOp::Sum),
        &[1],
    );
    let name = kernel_name(&ir);
    let src = CudaRenderer.render(&ir).unwrap();

    let a = PtxCache::new(Some(dir.clone()));
    let p1 = a.get(&name, &src, "compute_90").unwrap();
    let p2 = a.get(&name, &src, "compute_90").unwrap();
    assert_eq!(p1, p2);
    let st = a.stats();
    assert_eq!((st.compiled, st.memory_hits, st.disk_hits), (1, 1, 0));
    let file = dir.join(PtxCache::file_name(&name, &src, "compute_90"));
    assert!(file.is_file(), "{} written", file.display());
    assemble(&name, &p1);

    // A second cache (another process) reads the file instead of compiling.
    let b = PtxCache::new(Some(dir.clone()));
    assert_eq!(b.get(&name, &src, "compute_90").unwrap(), p1);
    assert_eq!((b.stats().compiled, b.stats().disk_hits), (0, 1));

    // A damaged file is ignored and replaced.
    std::fs::write(&file, "garbage").unwrap();
    let c = PtxCache::new(Some(dir.clone()));
    assert_eq!(c.get(&name, &src, "compute_90").unwrap(), p1);
    assert_eq!((c.stats().compiled, c.stats().disk_hits), (1, 0));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(&format!(".entry {name}")));

    // Other source (a renderer change), other file: never stale PTX.
    let other = format!("{src}\n// changed\n");
    assert_ne!(
        PtxCache::file_name(&name, &src, "compute_90"),
        PtxCache::file_name(&name, &other, "compute_90")
    );
    // Bad CUDA C is an error with NVRTC's log, not a panic.
    let err = c
        .get(
            "tessera_bad",
            "extern \"C\" __global__ void tessera_bad( { }",
            "compute_90",
        )
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A split reduction kernel (what the backend launches for a whole-chunk reduction) compiles.
#[test]
fn split_reduction_kernels_compile() {
    if !nvrtc() {
        return;
    }
    let cache = PtxCache::new(None);
    for op in [ReduceOp::Sum, ReduceOp::Var, ReduceOp::Max] {
        let ir = lower::reduce_ir(DType::F32, &[1 << 20], ReduceKind::Reduce(op), &[0]);
        let split = lower::split_reduction(&ir, 512).expect("512 divides 2^20");
        let src = CudaRenderer.render(&split).unwrap();
        let ptx = cache.get(&kernel_name(&split), &src, "compute_90").unwrap();
        assemble(&kernel_name(&split), &ptx);
    }
}

#[test]
fn no_driver_is_a_typed_error() {
    match CudaBackend::new() {
        Ok(b) => println!("skipped: a CUDA driver and GPU are present ({b:?})"),
        Err(e) => {
            assert!(
                matches!(e, Error::BackendUnavailable { ref backend, .. } if backend == "cuda"),
                "{e:?}"
            );
            println!("cuda unavailable as expected: {e}");
        }
    }
}

/// Two kernels with the same entry name and different code (what a stale or swapped cache file
/// of another kernel looks like).
fn twin(v: u32) -> String {
    format!("extern \"C\" __global__ void tessera_twin(float *x) {{ x[threadIdx.x] = {v}.0f; }}\n")
}

#[test]
fn ptx_of_another_kernel_or_cut_short_is_not_used() {
    if !nvrtc() {
        return;
    }
    let dir = scratch("swap");
    let (s1, s2) = (twin(1), twin(2));
    let a = PtxCache::new(Some(dir.clone()));
    let p1 = a.get("tessera_twin", &s1, "compute_90").unwrap();
    let p2 = a.get("tessera_twin", &s2, "compute_90").unwrap();
    assert_ne!(p1, p2);
    let f1 = dir.join(PtxCache::file_name("tessera_twin", &s1, "compute_90"));
    let f2 = dir.join(PtxCache::file_name("tessera_twin", &s2, "compute_90"));
    let whole = std::fs::read(&f1).unwrap();
    // Another kernel's valid file (same entry name), then the file cut short.
    for damage in [
        std::fs::read(&f2).unwrap(),
        whole[..whole.len() - 40].to_vec(),
    ] {
        std::fs::write(&f1, damage).unwrap();
        let b = PtxCache::new(Some(dir.clone()));
        assert_eq!(b.get("tessera_twin", &s1, "compute_90").unwrap(), p1);
        assert_eq!((b.stats().compiled, b.stats().disk_hits), (1, 0));
        assert_eq!(std::fs::read(&f1).unwrap(), whole, "replaced");
    }
    let c = PtxCache::new(Some(dir.clone()));
    assert_eq!(c.get("tessera_twin", &s1, "compute_90").unwrap(), p1);
    assert_eq!((c.stats().compiled, c.stats().disk_hits), (0, 1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ptx_folder_other_users_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let open = scratch("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o757)).unwrap();
    assert_eq!(PtxCache::new(Some(open.clone())).dir(), None);
    let private = scratch("private");
    assert_eq!(
        PtxCache::new(Some(private.clone())).dir(),
        Some(private.as_path())
    );
    if nvrtc() {
        // A valid file planted in the open folder is not read.
        let s = twin(3);
        let good = PtxCache::new(Some(private.clone()));
        let p = good.get("tessera_twin", &s, "compute_90").unwrap();
        let name = PtxCache::file_name("tessera_twin", &s, "compute_90");
        std::fs::copy(private.join(&name), open.join(&name)).unwrap();
        let c = PtxCache::new(Some(open.clone()));
        assert_eq!(c.get("tessera_twin", &s, "compute_90").unwrap(), p);
        assert_eq!((c.stats().compiled, c.stats().disk_hits), (1, 0));
    }
    let _ = std::fs::remove_dir_all(&open);
    let _ = std::fs::remove_dir_all(&private);
}
