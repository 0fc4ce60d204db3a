//! The CPU backend's compiled fused kernels (`tessera_cpu::jit`) against its interpreter, bit
//! for bit, over every representative kernel and every op per dtype (the matrix the GPU
//! renderers are checked with), on fresh random inputs mixed with the special values every op
//! must handle (NaN, infinities, signed zeros, integer extremes). Kernels whose ops have no C
//! rendering must fall back to the interpreter, never fail. Where no C compiler runs, the
//! test prints why it skipped.

mod common;

use common::{col, run_cpu, span};
use rand::{Rng, SeedableRng};
use tessera_cpu::jit::{self, JitMode};
use tessera_cpu::CpuBackend;
use tessera_runtime::ir::{KernelParams, RandomParam};
use tessera_runtime::{DType, HostArray};

/// `n` random values of `d`, with special values at fixed positions.
fn input(d: DType, n: usize, rng: &mut impl Rng) -> HostArray {
    match d {
        DType::Bool => HostArray::Bool(col((0..n).map(|_| rng.gen_bool(0.4)).collect())),
        DType::I32 => HostArray::I32(col((0..n)
            .map(|i| match i % 89 {
                5 => 0,
                6 => -1,
                7 => i32::MIN,
                8 => i32::MAX,
                9 => rng.gen(),
                _ => rng.gen_range(-300..300),
            })
            .collect())),
        DType::I64 => HostArray::I64(col((0..n)
            .map(|i| match i % 89 {
                5 => 0,
                7 => i64::MIN,
                8 => i64::MAX,
                9 => rng.gen(),
                _ => rng.gen_range(-1_000_000_000_000..1_000_000_000_000),
            })
            .collect())),
        DType::F32 => HostArray::F32(col((0..n)
            .map(|i| match i % 101 {
                3 => f32::NAN,
                4 => f32::INFINITY,
                5 => f32::NEG_INFINITY,
                6 => -0.0,
                7 => 0.5,
                8 => 0.0,
                9 => 3e9,
                10 => -2.5,
                _ => rng.gen_range(-8.0f32..8.0),
            })
            .collect())),
        DType::F64 => HostArray::F64(col((0..n)
            .map(|i| match i % 101 {
                3 => f64::NAN,
                4 => f64::INFINITY,
                6 => -0.0,
                8 => 0.0,
                9 => 1e300,
                10 => -1e19,
                _ => rng.gen_range(-8.0..8.0),
            })
            .collect())),
    }
}

/// Every output's bytes (bool as 0/1, floats by their bits), for exact comparison.
fn bits(out: &[HostArray]) -> Vec<Vec<u64>> {
    out.iter()
        .map(|a| match a {
            HostArray::Bool(x) => x.iter().map(|&v| v as u64).collect(),
            HostArray::I32(x) => x.iter().map(|&v| v as u32 as u64).collect(),
            HostArray::I64(x) => x.iter().map(|&v| v as u64).collect(),
            HostArray::F32(x) => x.iter().map(|&v| v.to_bits() as u64).collect(),
            HostArray::F64(x) => x.iter().map(|&v| v.to_bits()).collect(),
        })
        .collect()
}

#[test]
fn compiled_kernels_equal_the_interpreter_bit_for_bit() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cpu = CpuBackend::new();
    let mut compiled = Vec::new();
    let mut interpreted = Vec::new();
    let mut failures = Vec::new();
    for (name, ir) in common::cuda_all() {
        let nrand = tessera_kernels::num_random_params(&ir);
        let params = KernelParams {
            random: (0..nrand)
                .map(|k| RandomParam {
                    seed: rng.gen(),
                    stream: 3 + k as u64,
                    base: rng.gen_range(0..1 << 40),
                })
                .collect(),
            arg_base: 40,
            load_offsets: vec![3; ir.inputs.len()],
        };
        let inputs: Vec<HostArray> = (0..ir.inputs.len())
            .map(|i| input(ir.inputs[i].dtype, span(&ir, i) + 3, &mut rng))
            .collect();
        jit::set_mode(JitMode::Off);
        let want = run_cpu(&cpu, &ir, &params, &inputs);
        jit::set_mode(JitMode::Always);
        let before = jit::status();
        let got = run_cpu(&cpu, &ir, &params, &inputs);
        let after = jit::status();
        if after.failed > before.failed {
            // Skipped only where no C compiler runs at all: with one, a kernel that does not
            // compile is a failure (a silent skip once hid a broken cache path).
            if after.compiled + after.loaded == 0 && !cc_runs() {
                println!(
                    "skipped: no kernel compiles here: {}",
                    after.last_error.unwrap_or_default()
                );
                return;
            }
            failures.push(format!("{name}: compile failed: {:?}", after.last_error));
            continue;
        }
        if after.runs > before.runs {
            compiled.push(name.clone());
        } else {
            interpreted.push(name.clone());
        }
        match (want, got) {
            (Ok(w), Ok(g)) => {
                let (wb, gb) = (bits(&w), bits(&g));
                if wb != gb {
                    let first = wb
                        .iter()
                        .zip(&gb)
                        .flat_map(|(a, b)| a.iter().zip(b).enumerate())
                        .find(|(_, (a, b))| a != b)
                        .map(|(i, (a, b))| format!("element {i}: {a:#x} vs {b:#x}"));
                    failures.push(format!("{name}: differs at {first:?}"));
                }
            }
            (Err(w), Err(g)) => {
                if w.to_string() != g.to_string() {
                    failures.push(format!("{name}: errors differ: {w} vs {g}"));
                }
            }
            (w, g) => failures.push(format!("{name}: {:?} vs {:?}", w.err(), g.err())),
        }
    }
    jit::set_mode(JitMode::Auto);
    println!("compiled: {}: {compiled:?}", compiled.len());
    println!("interpreted: {}: {interpreted:?}", interpreted.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The headline chains and every cheap op compile; ops without a C rendering do not.
    for must in [
        "add_mul_f32",
        "where_compare",
        "cast_i32_f32",
        "mc_pi",
        "broadcast_add",
        "rand_strided",
    ] {
        assert!(
            compiled.iter().any(|n| n == must),
            "{must} was not compiled"
        );
    }
    for never in ["divmod_i32", "divmod_f64", "unary_round_float32"] {
        assert!(
            interpreted.iter().any(|n| n == never),
            "{never} has no C rendering but was compiled"
        );
    }
    assert!(
        compiled.len() > 100,
        "only {} kernels compiled",
        compiled.len()
    );
}

// The disk cache, tested in child processes (its folder, compiler and timeout are read from the
// environment once per process): each child runs two kernels compiled and interpreted on fresh
// random inputs and reports whether they agree, with the compiler's counters.

/// What one child process saw.
struct Child {
    ok: bool,
    equal: bool,
    compiled: usize,
    loaded: usize,
    replaced: usize,
    failed: usize,
    /// `cache_child_parallel`: milliseconds the cached kernel took.
    fast_ms: Option<u64>,
    stderr: String,
}

/// Runs the `cache_child` test in a child process with `env` (and `remove` unset).
fn child(env: &[(&str, &std::ffi::OsStr)], remove: &[&str]) -> Child {
    child_named("cache_child", env, remove)
}

/// Runs the child test `test` (it runs when `TESSERA_JIT_CHILD` names it).
fn child_named(test: &str, env: &[(&str, &std::ffi::OsStr)], remove: &[&str]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let args = ["--exact", test, "--nocapture", "--test-threads=1"];
    // `TESSERA_TEST_UMASK`: the child runs under that umask (set by a shell, then exec).
    let mut cmd = if env.iter().any(|(k, _)| *k == "TESSERA_TEST_UMASK") {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg("umask \"$TESSERA_TEST_UMASK\" && exec \"$0\" \"$@\"")
            .arg(&exe)
            .args(args);
        c
    } else {
        let mut c = std::process::Command::new(&exe);
        c.args(args);
        c
    };
    cmd.env("TESSERA_JIT_CHILD", test)
        .env_remove("TESSERA_CC")
        .env_remove("TESSERA_CC_TIMEOUT");
    for r in remove {
        cmd.env_remove(r);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let ms = String::from_utf8_lossy(&out.stdout)
        .split_once("fast_ms=")
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|x| x.1));
    let field = |k: &str| -> usize {
        line.and_then(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(usize::MAX)
    };
    Child {
        ok: out.status.success() && line.is_some(),
        equal: line.is_some_and(|l| l.contains("equal=true")),
        compiled: field("compiled"),
        loaded: field("loaded"),
        replaced: field("replaced"),
        failed: field("failed"),
        fast_ms: ms,
        stderr: format!("{}\n{stdout}\nstatus {:?}", stderr, out.status),
    }
}

/// A child with its cache under `root`.
fn child_in(root: &std::path::Path) -> Child {
    child(&[("TESSERA_CACHE_DIR", root.as_os_str())], &[])
}

/// The body of the child processes: add-mul and Monte Carlo pi, compiled and interpreted.
#[test]
fn cache_child() {
    if std::env::var("TESSERA_JIT_CHILD").as_deref() != Ok("cache_child") {
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
    let cpu = CpuBackend::new();
    let mut equal = true;
    for ir in [common::add_mul_f32(), common::mc_pi()] {
        let params = KernelParams {
            random: (0..tessera_kernels::num_random_params(&ir))
                .map(|k| RandomParam {
                    seed: rng.gen(),
                    stream: k as u64,
                    base: 0,
                })
                .collect(),
            arg_base: 0,
            load_offsets: vec![0; ir.inputs.len()],
        };
        let inputs: Vec<HostArray> = (0..ir.inputs.len())
            .map(|i| input(ir.inputs[i].dtype, span(&ir, i), &mut rng))
            .collect();
        jit::set_mode(JitMode::Off);
        let want = bits(&run_cpu(&cpu, &ir, &params, &inputs).unwrap());
        jit::set_mode(JitMode::Always);
        let got = bits(&run_cpu(&cpu, &ir, &params, &inputs).unwrap());
        equal &= want == got;
    }
    let s = jit::status();
    println!(
        "RESULT equal={equal} compiled={} loaded={} replaced={} failed={} runs={}",
        s.compiled, s.loaded, s.replaced, s.failed, s.runs
    );
}

/// A fresh cache root only this user can use.
fn cache_root(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let d = std::env::temp_dir().join(format!(
        "tessera-jit-{name}-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
    d
}

/// The cached libraries under `root`, sorted.
fn libraries(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root.join("cpu-jit"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    v.sort();
    v
}

/// A first child compiles both kernels into `root`; false (and why) where nothing compiles.
fn populate(root: &std::path::Path) -> bool {
    let c = child_in(root);
    assert!(c.ok && c.equal, "{}", c.stderr);
    if c.compiled == 0 && !cc_runs() {
        println!("skipped: no C compiler `cc` runs here");
        return false;
    }
    assert_eq!((c.compiled, c.loaded), (2, 0), "{}", c.stderr);
    assert_eq!(libraries(root).len(), 2);
    true
}

#[test]
fn a_cached_library_cut_short_is_replaced_and_never_loaded() {
    let root = cache_root("cut");
    if !populate(&root) {
        return;
    }
    let libs = libraries(&root);
    let good: Vec<Vec<u8>> = libs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (p, g) in libs.iter().zip(&good) {
        // `head -c 12000 good.so > k<hash>.so`: cut short in place.
        std::fs::write(p, &g[..(g.len() - 1).min(12000)]).unwrap();
    }
    let c = child_in(&root);
    assert!(c.ok, "the child died: {}", c.stderr);
    assert!(c.equal, "{}", c.stderr);
    assert_eq!((c.replaced, c.loaded), (2, 0), "{}", c.stderr);
    for (p, g) in libs.iter().zip(&good) {
        assert_eq!(std::fs::metadata(p).unwrap().len(), g.len() as u64);
    }
    let c = child_in(&root);
    assert!(c.ok && c.equal, "{}", c.stderr);
    assert_eq!(
        (c.loaded, c.replaced, c.compiled),
        (2, 0, 0),
        "{}",
        c.stderr
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn another_kernels_cached_library_is_detected_and_replaced() {
    let root = cache_root("swap");
    if !populate(&root) {
        return;
    }
    let libs = libraries(&root);
    // Each entry gets the other kernel's valid library: first alone, then with its digest
    // record.
    for with_meta in [false, true] {
        let exts: &[&str] = if with_meta { &["so", "meta"] } else { &["so"] };
        for ext in exts {
            let (a, b) = (libs[0].with_extension(ext), libs[1].with_extension(ext));
            let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            std::fs::write(&a, bb).unwrap();
            std::fs::write(&b, ba).unwrap();
        }
        let c = child_in(&root);
        assert!(c.ok, "the child died: {}", c.stderr);
        assert!(c.equal, "with_meta {with_meta}: {}", c.stderr);
        assert_eq!((c.replaced, c.loaded), (2, 0), "{}", c.stderr);
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_cache_folder_other_users_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let good = cache_root("good");
    if !populate(&good) {
        return;
    }
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    // Valid entries planted in a root (then only in its cpu-jit folder) others can write.
    for (root_mode, sub_mode) in [(0o757, 0o700), (0o700, 0o777)] {
        let root = cache_root("open");
        let sub = root.join("cpu-jit");
        std::fs::create_dir(&sub).unwrap();
        for e in std::fs::read_dir(good.join("cpu-jit")).unwrap().flatten() {
            std::fs::copy(e.path(), sub.join(e.file_name())).unwrap();
        }
        let before = names(&sub);
        mode(&root, root_mode);
        mode(&sub, sub_mode);
        let c = child_in(&root);
        assert!(c.ok && c.equal, "{}", c.stderr);
        assert_eq!(c.loaded, 0, "loaded code from an open folder: {}", c.stderr);
        assert_eq!(c.compiled, 2, "{}", c.stderr);
        assert_eq!(
            c.stderr.matches("writable by other users").count(),
            1,
            "{}",
            c.stderr
        );
        // Nothing was written there either.
        let after = names(&sub);
        assert_eq!(before, after);
        mode(&root, 0o700);
        std::fs::remove_dir_all(&root).unwrap();
    }
    std::fs::remove_dir_all(&good).unwrap();
}

#[test]
fn without_home_the_cache_is_a_private_per_user_folder() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = cache_root("tmp");
    let uid = std::fs::metadata(&tmp).unwrap().uid();
    let unset = ["TESSERA_CACHE_DIR", "XDG_CACHE_HOME", "HOME"];
    let c = child(&[("TMPDIR", tmp.as_os_str())], &unset);
    assert!(c.ok && c.equal, "{}", c.stderr);
    if c.compiled == 0 && !cc_runs() {
        println!("skipped: no C compiler `cc` runs here");
        return;
    }
    let own = tmp.join(format!("tessera-cache-{uid}"));
    let m = std::fs::metadata(&own).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o700);
    assert_eq!(libraries(&own).len(), 2);
    // The same folder opened to others (as if another user had created it first): not used.
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o777)).unwrap();
    let c = child(&[("TMPDIR", tmp.as_os_str())], &unset);
    assert!(c.ok && c.equal, "{}", c.stderr);
    assert_eq!((c.loaded, c.compiled), (0, 2), "{}", c.stderr);
    assert!(c.stderr.contains("writable by other users"), "{}", c.stderr);
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn a_hung_compiler_times_out_and_the_interpreter_runs() {
    use std::os::unix::fs::PermissionsExt;
    let root = cache_root("hung");
    let cc = root.join("slow-cc");
    std::fs::write(&cc, "#!/bin/sh\nsleep 60\n").unwrap();
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o700)).unwrap();
    let t = std::time::Instant::now();
    let c = child(
        &[
            ("TESSERA_CACHE_DIR", root.as_os_str()),
            ("TESSERA_CC", cc.as_os_str()),
            ("TESSERA_CC_TIMEOUT", "1".as_ref()),
        ],
        &[],
    );
    let dt = t.elapsed();
    assert!(c.ok && c.equal, "{}", c.stderr);
    assert!(dt < std::time::Duration::from_secs(20), "took {dt:?}");
    assert_eq!(c.compiled, 0, "{}", c.stderr);
    assert!(c.failed >= 1, "{}", c.stderr);
    assert_eq!(
        c.stderr.matches("did not finish in 1 s").count(),
        1,
        "one line: {}",
        c.stderr
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn compiler_failures_say_what_happened() {
    for (cc, says) in [
        (
            "/bin/false",
            "`/bin/false` exited with status 1 and printed nothing",
        ),
        (
            "/bin/true",
            "`/bin/true` exited 0 but produced no library at ",
        ),
    ] {
        if !std::path::Path::new(cc).exists() {
            println!("skipped: no {cc}");
            continue;
        }
        let root = cache_root("fail");
        let c = child(
            &[
                ("TESSERA_CACHE_DIR", root.as_os_str()),
                ("TESSERA_CC", cc.as_ref()),
            ],
            &[],
        );
        assert!(c.ok && c.equal, "{}", c.stderr);
        assert_eq!(c.failed, 2, "{}", c.stderr);
        assert!(c.stderr.contains(says), "{}", c.stderr);
        // No temporaries left behind.
        assert_eq!(std::fs::read_dir(root.join("cpu-jit")).unwrap().count(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

/// The file names in `dir` with their contents.
fn names(dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

/// Whether the default compiler runs here (where it does, the cache tests must not skip).
fn cc_runs() -> bool {
    std::process::Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Child: Monte Carlo pi (its compile hangs) on one thread; half a second later add-mul, whose
/// library is cached, on another. Prints how long add-mul took.
#[test]
fn cache_child_parallel() {
    if std::env::var("TESSERA_JIT_CHILD").as_deref() != Ok("cache_child_parallel") {
        return;
    }
    jit::set_mode(JitMode::Always);
    let run = |ir: tessera_runtime::ir::KernelIr| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let params = KernelParams {
            random: (0..tessera_kernels::num_random_params(&ir))
                .map(|k| RandomParam {
                    seed: 1,
                    stream: k as u64,
                    base: 0,
                })
                .collect(),
            arg_base: 0,
            load_offsets: vec![0; ir.inputs.len()],
        };
        let inputs: Vec<HostArray> = (0..ir.inputs.len())
            .map(|i| input(ir.inputs[i].dtype, span(&ir, i), &mut rng))
            .collect();
        run_cpu(&CpuBackend::new(), &ir, &params, &inputs).unwrap();
    };
    let slow = std::thread::spawn(move || run(common::mc_pi()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    run(common::add_mul_f32());
    let fast = t.elapsed();
    slow.join().unwrap();
    let s = jit::status();
    println!(
        "RESULT equal=true compiled={} loaded={} replaced={} failed={} fast_ms={}",
        s.compiled,
        s.loaded,
        s.replaced,
        s.failed,
        fast.as_millis()
    );
}

#[test]
fn a_compile_in_progress_does_not_hold_up_other_kernels() {
    use std::os::unix::fs::PermissionsExt;
    if !cc_runs() {
        println!("skipped: no C compiler `cc` runs here");
        return;
    }
    let root = cache_root("par");
    // A compiler that hangs on Monte Carlo pi's kernel (the one that calls powf) when asked to.
    let cc = root.join("cc-hangs-on-pow");
    std::fs::write(
        &cc,
        "#!/bin/sh\nif [ \"$TESSERA_TEST_HANG\" = 1 ]; then\n  for a in \"$@\"; do\n    \
         case \"$a\" in *.c) grep -q powf \"$a\" && exec sleep 60;; esac\n  done\nfi\n\
         exec cc \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o700)).unwrap();
    let env = |hang: &'static str| {
        vec![
            ("TESSERA_CACHE_DIR", root.as_os_str().to_owned()),
            ("TESSERA_CC", cc.as_os_str().to_owned()),
            ("TESSERA_TEST_HANG", hang.into()),
            ("TESSERA_CC_TIMEOUT", "6".into()),
        ]
    };
    let e0 = env("0");
    let c = child(&pairs(&e0), &[]);
    assert!(c.ok && c.equal, "{}", c.stderr);
    assert_eq!(c.compiled, 2, "{}", c.stderr);
    // Only add-mul stays cached.
    for e in std::fs::read_dir(root.join("cpu-jit")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "c")
            && std::fs::read_to_string(&p).unwrap().contains("powf")
        {
            for ext in ["so", "meta", "c"] {
                let _ = std::fs::remove_file(p.with_extension(ext));
            }
        }
    }
    assert_eq!(libraries(&root).len(), 1);
    let e1 = env("1");
    let c = child_named("cache_child_parallel", &pairs(&e1), &[]);
    assert!(c.ok, "{}", c.stderr);
    assert_eq!((c.loaded, c.failed), (1, 1), "{}", c.stderr);
    let fast = c.fast_ms.unwrap();
    assert!(
        fast < 3000,
        "a cached kernel waited {fast} ms for another kernel's compile: {}",
        c.stderr
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// `env` pairs as [`child`] takes them.
fn pairs<'a>(
    v: &'a [(&'static str, std::ffi::OsString)],
) -> Vec<(&'static str, &'a std::ffi::OsStr)> {
    v.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
}

#[test]
fn libraries_built_under_a_group_writable_umask_are_cached() {
    let root = cache_root("umask");
    let env = [
        ("TESSERA_CACHE_DIR", root.as_os_str()),
        ("TESSERA_TEST_UMASK", "002".as_ref()),
    ];
    let c = child(&env, &[]);
    assert!(c.ok && c.equal, "{}", c.stderr);
    if c.compiled == 0 && !cc_runs() {
        println!("skipped: no C compiler `cc` runs here");
        return;
    }
    assert_eq!(c.compiled, 2, "{}", c.stderr);
    let c = child(&env, &[]);
    assert!(c.ok && c.equal, "{}", c.stderr);
    assert_eq!((c.loaded, c.replaced), (2, 0), "{}", c.stderr);
    std::fs::remove_dir_all(&root).unwrap();
}
