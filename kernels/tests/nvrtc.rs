//! Every generated CUDA C kernel compiles with NVRTC (to PTX for compute_90) and the PTX
//! assembles with `ptxas -arch=sm_90`, where those tools exist; otherwise the test prints
//! `skipped: <reason>` and passes.
//!
//! With `TESSERA_PTX_OUT=<dir>` the PTX files are also written there (for running them on a
//! machine without NVRTC: `tests/cuda_run.rs` reads `TESSERA_PTX_DIR`).
//!
//! NVRTC is found through `TESSERA_NVRTC_LIB_DIR` (a directory holding `libnvrtc.so*`) or the
//! dynamic loader's path (`LD_LIBRARY_PATH`); ptxas through `TESSERA_PTXAS` or `PATH`.

mod common;
mod tools;

use tools::{nvrtc, ptxas};

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera_kernels::{kernel_name, CudaRenderer};
use tessera_runtime::ir::{KernelIr, Renderer};

/// Compiles `kernels` with NVRTC and (when given) assembles them with ptxas in `dir`; returns
/// (failures, number assembled).
fn check(kernels: &[(String, KernelIr)], ptxas: Option<&Path>, dir: &Path) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut assembled = 0;
    for (name, ir) in kernels {
        let name = name.as_str();
        let src = CudaRenderer.render(ir).expect("cuda renders");
        let opts = CompileOptions {
            arch: Some("compute_90"),
            name: Some(format!("{name}.cu")),
            ..Default::default()
        };
        let ptx = match compile_ptx_with_opts(&src, opts) {
            Ok(p) => p.to_src(),
            Err(e) => {
                failures.push(format!("{name}: NVRTC: {e}"));
                continue;
            }
        };
        if let Some(out) = std::env::var_os("TESSERA_PTX_OUT") {
            std::fs::create_dir_all(&out).expect("TESSERA_PTX_OUT");
            std::fs::write(PathBuf::from(out).join(format!("{name}.ptx")), &ptx)
                .expect("write ptx");
        }
        let entry = format!(".entry {}(", kernel_name(ir));
        if !ptx.contains(&entry) {
            failures.push(format!("{name}: PTX lacks `{entry}`"));
        }
        if let Some(ptxas) = ptxas {
            let file = dir.join(format!("{name}.ptx"));
            std::fs::write(&file, &ptx).expect("write ptx");
            let out = Command::new(ptxas)
                .args(["-arch=sm_90", "-o"])
                .arg(dir.join(format!("{name}.cubin")))
                .arg(&file)
                .output();
            match out {
                Ok(o) if o.status.success() => assembled += 1,
                Ok(o) => failures.push(format!(
                    "{name}: ptxas: {}",
                    String::from_utf8_lossy(&o.stderr)
                )),
                Err(e) => failures.push(format!("{name}: running ptxas: {e}")),
            }
        }
    }
    (failures, assembled)
}

#[test]
fn cuda_compiles_with_nvrtc_and_ptxas() {
    if let Err(reason) = nvrtc() {
        println!("skipped: {reason}");
        return;
    }
    let mut major = 0;
    let mut minor = 0;
    // SAFETY: nvrtcVersion writes two ints through valid pointers.
    unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    println!("NVRTC {major}.{minor}");
    let ptxas = ptxas();
    match &ptxas {
        Some(p) => {
            let v = Command::new(p).arg("--version").output();
            let v = v.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            println!(
                "ptxas {}: {}",
                p.display(),
                v.unwrap_or_default().lines().last().unwrap_or("")
            );
        }
        None => println!("skipped ptxas: not found (set TESSERA_PTXAS or PATH)"),
    }
    let dir = std::env::temp_dir().join(format!("tessera-kernels-ptx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kernels = common::cuda_all();
    // Two workers: NVRTC programs are independent.
    let results: Vec<(Vec<String>, usize)> = std::thread::scope(|sc| {
        let workers: Vec<_> = kernels
            .chunks(kernels.len().div_ceil(2))
            .map(|part| sc.spawn(|| check(part, ptxas.as_deref(), &dir)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let failures: Vec<String> = results.iter().flat_map(|r| r.0.clone()).collect();
    let assembled: usize = results.iter().map(|r| r.1).sum();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} kernels compiled by NVRTC, {assembled} assembled by ptxas",
        kernels.len()
    );
}
