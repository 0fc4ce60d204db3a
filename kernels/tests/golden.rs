//! Golden files for the generated WGSL and CUDA C, and naga validation of every WGSL kernel.
//! Regenerate the golden files after an intended change: `TESSERA_BLESS=1 cargo test -p
//! tessera-kernels`.

mod common;

use naga::valid::{Capabilities, ValidationFlags, Validator};
use std::path::PathBuf;
use tessera_kernels::{uses_f64, CudaRenderer, WgslRenderer};
use tessera_runtime::ir::Renderer;

fn golden_path(name: &str, ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("{name}.{ext}"))
}

/// Compares `text` with the golden file (or writes it under TESSERA_BLESS); returns a message
/// on mismatch.
fn check_golden(name: &str, ext: &str, text: &str) -> Option<String> {
    let path = golden_path(name, ext);
    if std::env::var_os("TESSERA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, text).expect("write golden file");
        return None;
    }
    let want = match std::fs::read_to_string(&path) {
        Ok(w) => w,
        Err(e) => {
            return Some(format!(
                "{}: {e} (run with TESSERA_BLESS=1)",
                path.display()
            ))
        }
    };
    if want == text {
        return None;
    }
    let line = want
        .lines()
        .zip(text.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| want.lines().count().min(text.lines().count()));
    Some(format!(
        "{} differs from the generated text at line {} (TESSERA_BLESS=1 regenerates):\n  golden: {:?}\n  now:    {:?}",
        path.display(),
        line + 1,
        want.lines().nth(line),
        text.lines().nth(line)
    ))
}

fn validate(src: &str, caps: Capabilities) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| e.emit_to_string(src))?;
    Ok(())
}

#[test]
fn golden_files_match() {
    let mut failures = Vec::new();
    for (name, ir) in common::all() {
        let w = WgslRenderer.render(&ir).expect("wgsl renders");
        let c = CudaRenderer.render(&ir).expect("cuda renders");
        failures.extend(check_golden(name, "wgsl", &w));
        failures.extend(check_golden(name, "cu", &c));
    }
    for (name, ir) in common::cuda_only() {
        let c = CudaRenderer.render(&ir).expect("cuda renders");
        failures.extend(check_golden(name, "cu", &c));
        match WgslRenderer.render(&ir) {
            Err(tessera_runtime::Error::Unsupported { backend, .. }) if backend == "wgsl" => {}
            other => failures.push(format!("{name}: WGSL should be Unsupported, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn wgsl_validates_with_naga() {
    let mut failures = Vec::new();
    for (name, ir) in common::all() {
        let src = WgslRenderer.render(&ir).expect("wgsl renders");
        if let Err(e) = validate(&src, Capabilities::all()) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn f32_kernels_validate_without_f64() {
    let caps = Capabilities::all() - Capabilities::FLOAT64;
    let mut checked = 0;
    for (name, ir) in common::all() {
        let src = WgslRenderer.render(&ir).expect("wgsl renders");
        let f64_in_text = src.contains("f64");
        assert_eq!(
            uses_f64(&ir),
            f64_in_text,
            "{name}: uses_f64 disagrees with the text"
        );
        let r = validate(&src, caps);
        if uses_f64(&ir) {
            assert!(r.is_err(), "{name} uses f64 but validated without FLOAT64");
        } else {
            r.unwrap_or_else(|e| panic!("{name} without FLOAT64: {e}"));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} f32-only kernels");
}

/// Every op x dtype renders to WGSL that naga accepts, or is `Unsupported` for a stated reason
/// (int64 values, f64 transcendentals).
#[test]
fn op_matrix_wgsl_validates() {
    let mut failures = Vec::new();
    let (mut ok, mut unsupported) = (0, 0);
    for (name, ir) in common::matrix() {
        match WgslRenderer.render(&ir) {
            Ok(src) => match validate(&src, Capabilities::all()) {
                Ok(()) => ok += 1,
                Err(e) => failures.push(format!("{name}: {e}")),
            },
            Err(tessera_runtime::Error::Unsupported { op, .. }) => {
                assert!(
                    op.contains("64-bit") || op.contains("float64"),
                    "{name}: unexpected reason {op}"
                );
                unsupported += 1;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("{ok} kernels validated, {unsupported} unsupported in WGSL");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The library kernels of shaders/ that stand alone validate with naga (each entry point of the
/// bitonic sort as `main`, as the wgpu backend compiles them; without FLOAT64: they are
/// 32-bit only).
#[test]
fn library_shaders_validate_with_naga() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("reading shaders/{f}: {e}"))
    };
    let bitonic = read("sort_bitonic.wgsl");
    let sources = [
        ("copy.wgsl", read("copy.wgsl")),
        ("reshape_gather.wgsl", read("reshape_gather.wgsl")),
        ("sort_init.wgsl", read("sort_init.wgsl")),
        (
            "sort_bitonic.wgsl (local)",
            bitonic.replace("fn bitonic_local(", "fn main("),
        ),
        (
            "sort_bitonic.wgsl (step)",
            bitonic.replace("fn bitonic_step(", "fn main("),
        ),
    ];
    let caps = Capabilities::all() - Capabilities::FLOAT64;
    let failures: Vec<String> = sources
        .iter()
        .filter_map(|(name, src)| validate(src, caps).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
