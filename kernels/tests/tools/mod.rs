//! NVRTC and ptxas discovery shared by the CUDA tests.
#![allow(dead_code)]

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use std::path::PathBuf;

/// Makes libnvrtc loadable, or says why not.
pub fn nvrtc() -> Result<(), String> {
    if let Some(dir) = std::env::var_os("TESSERA_NVRTC_LIB_DIR") {
        let dir = PathBuf::from(dir);
        let lib = std::fs::read_dir(&dir)
            .map_err(|e| format!("TESSERA_NVRTC_LIB_DIR {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| n.starts_with("libnvrtc.so"))
            })
            .min()
            .ok_or_else(|| format!("no libnvrtc.so* in {}", dir.display()))?;
        // SAFETY: loading NVIDIA's NVRTC runs only its (trusted) initializers. The handle is
        // leaked so the library stays loaded; cudarc's later dlopen by soname finds it.
        let handle = unsafe { libloading::Library::new(&lib) }
            .map_err(|e| format!("loading {}: {e}", lib.display()))?;
        std::mem::forget(handle);
    }
    // SAFETY: only tries to dlopen libnvrtc under its usual names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err("libnvrtc not found (set TESSERA_NVRTC_LIB_DIR or LD_LIBRARY_PATH)".into())
    }
}

pub fn ptxas() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TESSERA_PTXAS") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file())
}

/// The PTX of generated kernel `name`: read from `TESSERA_PTX_DIR` when set (a machine with a
/// driver but no NVRTC), else compiled with NVRTC for compute_90 and, with `TESSERA_PTX_OUT`,
/// also written there.
pub fn cuda_ptx(name: &str, src: &str) -> Result<Ptx, String> {
    if let Some(dir) = std::env::var_os("TESSERA_PTX_DIR") {
        let p = std::path::PathBuf::from(dir).join(format!("{name}.ptx"));
        return std::fs::read_to_string(&p)
            .map(Ptx::from_src)
            .map_err(|e| format!("{}: {e}", p.display()));
    }
    nvrtc()?;
    let ptx = compile_ptx_with_opts(
        src,
        CompileOptions {
            arch: Some("compute_90"),
            name: Some(format!("{name}.cu")),
            ..Default::default()
        },
    )
    .map_err(|e| format!("NVRTC: {e}"))?;
    if let Some(out) = std::env::var_os("TESSERA_PTX_OUT") {
        std::fs::create_dir_all(&out).map_err(|e| format!("TESSERA_PTX_OUT: {e}"))?;
        std::fs::write(
            std::path::PathBuf::from(out).join(format!("{name}.ptx")),
            ptx.to_src(),
        )
        .map_err(|e| format!("write PTX: {e}"))?;
    }
    Ok(ptx)
}
