//! Arrays on disk: `.npy` and raw files read chunk by chunk, results written chunk by chunk.
//! Round trips are bit-identical at every chunking and dtype; files in numpy's other layouts
//! (big-endian, Fortran order) read right; every error names the file, never yields data read
//! as something else, and a failed write leaves nothing at the target.

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::{Path, PathBuf};
use tessera::io::{from_raw, load_npy, npy};
use tessera::{cpu_session, DType, Error, FileError, HostArray, MemoryConfig, Session};

/// A private folder for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let seed: u64 = rand::random();
        let p = std::env::temp_dir().join(format!("tessera-io-{name}-{seed:016x}"));
        std::fs::create_dir(&p).unwrap();
        Dir(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn seed() -> u64 {
    let s = std::env::var("TESSERA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("TESSERA_TEST_SEED={s}");
    s
}

fn random_host(rng: &mut StdRng, shape: &[usize], dt: DType) -> HostArray {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.gen_range(-1e6..1e6)).collect();
    let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).unwrap();
    match dt {
        DType::Bool => HostArray::Bool(a.mapv(|x| x > 0.0)),
        DType::I32 => HostArray::I32(a.mapv(|x| x as i32)),
        DType::I64 => HostArray::I64(a.mapv(|x| (x * 1e6) as i64)),
        DType::F32 => HostArray::F32(a.mapv(|x| x as f32)),
        DType::F64 => HostArray::F64(a),
    }
}

fn bits_equal(a: &HostArray, b: &HostArray) -> bool {
    a.dtype() == b.dtype() && a.shape() == b.shape() && {
        let (x, y) = (tessera::io::bytes_of(a), tessera::io::bytes_of(b));
        x == y
    }
}

/// Device and host budgets, and no disk to spill to.
fn no_disk(device: u64, host: u64) -> MemoryConfig {
    MemoryConfig {
        device_bytes: Some(device),
        host_bytes: Some(host),
        disk_bytes: Some(0),
        ..MemoryConfig::default()
    }
}

const DTYPES: [DType; 5] = [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64];

#[test]
fn npy_round_trips_are_bit_identical_at_every_chunking() {
    let mut rng = StdRng::seed_from_u64(seed());
    let dir = Dir::new("roundtrip");
    let s = cpu_session();
    for dt in DTYPES {
        for (shape, write_chunks, read_chunks) in [
            (vec![37usize, 23], vec![10usize, 7], vec![37usize, 23]),
            (vec![37, 23], vec![37, 23], vec![5, 23]),
            (vec![6, 5, 9], vec![4, 2, 3], vec![6, 1, 9]),
            (vec![1000], vec![333], vec![128]),
            // Runs of many pages, unaligned, longer than one direct-I/O piece (8 MiB) for the
            // wider dtypes: written partly with O_DIRECT, partly buffered.
            (vec![3_300_007], vec![1_100_003], vec![1_000_000]),
            (vec![64, 5003], vec![64, 2500], vec![64, 5003]),
            (vec![], vec![], vec![]),
            (vec![0, 4], vec![1, 4], vec![1, 4]),
        ] {
            let h = random_host(&mut rng, &shape, dt);
            let path = dir.path("a.npy");
            let t = s.from_host(h.clone()).with_chunks(&write_chunks).unwrap();
            t.to_npy(&path).unwrap();
            let back = load_npy(&s, &path, Some(&read_chunks)).unwrap();
            assert_eq!(back.shape(), &shape[..]);
            assert_eq!(back.dtype(), dt);
            let got = back.execute().unwrap();
            assert!(bits_equal(&got, &h), "{dt} {shape:?} {write_chunks:?}");
            // An expression over the file reads it chunk by chunk like any source.
            if dt == DType::F64 && !shape.is_empty() {
                let sum = load_npy(&s, &path, Some(&read_chunks))
                    .unwrap()
                    .sum(tessera::Axes::All, false)
                    .unwrap()
                    .item()
                    .unwrap();
                let want: f64 = match &h {
                    HostArray::F64(a) => a.sum(),
                    _ => unreachable!(),
                };
                assert!(
                    (sum - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{sum} {want}"
                );
            }
            assert_eq!(
                dir.names(),
                vec!["a.npy".to_string()],
                "no temporary file left"
            );
        }
    }
}

/// A `.npy` file as numpy writes it for other layouts: big-endian and/or Fortran order.
fn numpy_file(path: &Path, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut text = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape_text}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + text.len() + 1) % 64 != 0 {
        text.push(' ');
    }
    text.push('\n');
    let mut bytes = npy::MAGIC.to_vec();
    bytes.extend([1, 0]);
    bytes.extend((text.len() as u16).to_le_bytes());
    bytes.extend(text.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn big_endian_and_fortran_order_files_read_right() {
    let dir = Dir::new("layouts");
    let s = cpu_session();
    let shape = [5usize, 4, 3];
    let n: usize = shape.iter().product();
    // Element (i, j, k) holds 100 i + 10 j + k.
    let value = |i: usize, j: usize, k: usize| (100 * i + 10 * j + k) as f64;
    for (fortran, big) in [(false, true), (true, false), (true, true)] {
        let mut data = Vec::with_capacity(n * 8);
        let mut push = |i, j, k| {
            let v: f64 = value(i, j, k);
            data.extend(if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        };
        if fortran {
            for k in 0..3 {
                for j in 0..4 {
                    for i in 0..5 {
                        push(i, j, k);
                    }
                }
            }
        } else {
            for i in 0..5 {
                for j in 0..4 {
                    for k in 0..3 {
                        push(i, j, k);
                    }
                }
            }
        }
        let path = dir.path("l.npy");
        numpy_file(
            &path,
            if big { ">f8" } else { "<f8" },
            fortran,
            &shape,
            &data,
        );
        for chunks in [[5usize, 4, 3], [2, 3, 2], [1, 4, 1]] {
            let got = load_npy(&s, &path, Some(&chunks))
                .unwrap()
                .to_array::<f64>()
                .unwrap();
            for ((ix, &v), _) in got.indexed_iter().zip(0..) {
                assert_eq!(v, value(ix[0], ix[1], ix[2]), "fortran {fortran} big {big}");
            }
        }
    }
    // A big-endian int32 raw file read with from_raw, at an offset.
    let path = dir.path("r.bin");
    let mut bytes = vec![0xAAu8; 7];
    for v in 0..20i32 {
        bytes.extend((v * 3 - 7).to_be_bytes());
    }
    std::fs::write(&path, &bytes).unwrap();
    let t = from_raw(&s, &path, DType::I32, &[4, 5], 7, true, Some(&[3, 2])).unwrap();
    let got = t.to_array::<i32>().unwrap();
    let want: Vec<i32> = (0..20).map(|v| v * 3 - 7).collect();
    assert_eq!(got.as_slice().unwrap(), &want[..]);
}

fn file_err(r: tessera::Result<impl std::fmt::Debug>) -> (String, FileError, String) {
    match r {
        Err(Error::File { path, kind, msg }) => (path, kind, msg),
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = Dir::new("errors");
    let s = cpu_session();
    // Missing.
    let missing = dir.path("missing.npy");
    let (p, kind, _) = file_err(load_npy(&s, &missing, None));
    assert_eq!(
        (p.as_str(), kind),
        (missing.to_str().unwrap(), FileError::NotFound)
    );
    // Not .npy at all.
    let junk = dir.path("junk.npy");
    std::fs::write(&junk, b"hello, world; not an array").unwrap();
    let (_, kind, msg) = file_err(load_npy(&s, &junk, None));
    assert_eq!(kind, FileError::Malformed, "{msg}");
    // A dtype Tessera lacks.
    let c = dir.path("complex.npy");
    numpy_file(&c, "<c16", false, &[2], &[0u8; 32]);
    let (_, kind, msg) = file_err(load_npy(&s, &c, None));
    assert_eq!(kind, FileError::Unsupported);
    assert!(msg.contains("<c16"), "{msg}");
    // Truncated data: the header says more than the file holds.
    let t = dir.path("short.npy");
    numpy_file(&t, "<f8", false, &[10, 10], &[0u8; 799]);
    let (_, kind, msg) = file_err(load_npy(&s, &t, None));
    assert_eq!(kind, FileError::Malformed);
    assert!(msg.contains("truncated"), "{msg}");
    // A raw file too short for the shape asked for.
    let r = dir.path("r.bin");
    std::fs::write(&r, [0u8; 100]).unwrap();
    let (_, kind, _) = file_err(from_raw(&s, &r, DType::F64, &[13], 0, false, None));
    assert_eq!(kind, FileError::Malformed);
    // A file cut short after it was opened: the chunk read fails naming the file and the box.
    let cut = dir.path("cut.npy");
    s.from_host(HostArray::F64(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[100, 10]),
        1.5,
    )))
    .to_npy(&cut)
    .unwrap();
    let lazy = load_npy(&s, &cut, Some(&[10, 10])).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&cut).unwrap();
    f.set_len(128 + 8 * 500).unwrap();
    let (p, _, msg) = file_err(lazy.execute());
    assert_eq!(p, cut.to_str().unwrap());
    assert!(msg.contains("chunk"), "{msg}");
}

#[test]
fn a_failed_write_leaves_nothing_and_keeps_the_old_file() {
    let dir = Dir::new("failed");
    let s = cpu_session();
    // A source that fails mid-run: a file cut short after it was opened.
    let src = dir.path("src.npy");
    s.from_host(HostArray::F32(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[200, 50]),
        2.0,
    )))
    .to_npy(&src)
    .unwrap();
    let lazy = load_npy(&s, &src, Some(&[20, 50])).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&src)
        .unwrap()
        .set_len(128 + 4 * 5000)
        .unwrap();
    let out = dir.path("out.npy");
    std::fs::write(&out, b"the previous contents").unwrap();
    let r = ((&lazy + 1.0) * 2.0).to_npy(&out);
    assert!(matches!(r, Err(Error::File { .. })), "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous contents");
    assert_eq!(
        dir.names(),
        vec!["out.npy".to_string(), "src.npy".to_string()]
    );
    // A folder that does not exist: an error naming the target, nothing created.
    let nowhere = dir.path("no-such-folder").join("x.npy");
    let (p, kind, _) = file_err(
        s.from_host(HostArray::F32(ndarray::ArrayD::zeros(ndarray::IxDyn(&[3]))))
            .to_npy(&nowhere),
    );
    assert_eq!(
        (p.as_str(), kind),
        (nowhere.to_str().unwrap(), FileError::NotFound)
    );
}

#[test]
fn a_result_larger_than_the_host_budget_is_written_chunk_by_chunk() {
    let dir = Dir::new("budget");
    let s: Session = cpu_session();
    // 32 MB of float64 written under an 8 MiB host budget and a 4 MiB device budget.
    s.set_memory(Some(no_disk(4 << 20, 8 << 20)));
    let n = 4_000_000usize;
    let x = s
        .random(3)
        .rand(&[n], DType::F64)
        .with_chunks(&[250_000])
        .unwrap();
    let path = dir.path("big.npy");
    ((&x + 1.0) * 2.0).to_npy(&path).unwrap();
    let st = s.last_stats();
    let mem = st.memory.expect("a scheduled run");
    let peak_host = mem.peak_of(tessera::Tier::Host);
    assert!(peak_host <= 8 << 20, "host peak {peak_host}");
    assert_eq!(
        st.per_op
            .iter()
            .find(|(k, _)| k == "write")
            .map(|(_, v)| *v),
        Some(16)
    );
    s.set_memory(None);
    // The file holds the values: read back chunk by chunk and compared with the expression.
    let back = load_npy(&s, &path, Some(&[1_000_000])).unwrap();
    let want = ((&x + 1.0) * 2.0).with_chunks(&[1_000_000]).unwrap();
    let diff = (&back - &want)
        .abs()
        .unwrap()
        .max(tessera::Axes::All, false)
        .unwrap()
        .item()
        .unwrap();
    assert_eq!(diff, 0.0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        128 + 8 * n as u64,
        "header and data, nothing else"
    );
}

#[test]
fn file_chunks_evicted_under_a_budget_are_read_again_not_spilled() {
    let dir = Dir::new("reread");
    let s = cpu_session();
    let n = 2_000_000usize; // 16 MB of float64 in 16 chunks of 1 MB
    let mut rng = StdRng::seed_from_u64(seed());
    let h = random_host(&mut rng, &[n], DType::F64);
    let path = dir.path("x.npy");
    s.from_host(h.clone()).to_npy(&path).unwrap();
    let want: f64 = match &h {
        HostArray::F64(a) => {
            a.iter().map(|v| v * 2.0).sum::<f64>() + a.iter().map(|v| v * 3.0).sum::<f64>()
        }
        _ => unreachable!(),
    };
    // Each chunk of x is read by two reductions; under a 4 MiB budget per tier its chunks cannot
    // all stay between their uses, and there is no disk budget to spill them to.
    s.set_memory(Some(no_disk(4 << 20, 4 << 20)));
    let x = load_npy(&s, &path, Some(&[125_000])).unwrap();
    let a = (&x * 2.0).sum(tessera::Axes::All, false).unwrap();
    let b = (&x * 3.0).sum(tessera::Axes::All, false).unwrap();
    let got = s.execute_many(&[&a, &b]).unwrap();
    let sum = |v: &HostArray| match v {
        HostArray::F64(a) => a.iter().sum::<f64>(),
        _ => unreachable!(),
    };
    let total = sum(&got[0]) + sum(&got[1]);
    assert!((total - want).abs() <= 1e-9 * want.abs(), "{total} {want}");
    let st = s.last_stats();
    let mem = st.memory.expect("scheduled");
    assert_eq!(mem.spills, 0, "file chunks are read again, never spilled");
    let reads = st
        .per_op
        .iter()
        .find(|(k, _)| k == "external")
        .map_or(0, |(_, v)| *v);
    assert!(
        reads > 16,
        "the file's 16 chunks were read {reads} times: some twice"
    );
    assert!(mem.peak_of(tessera::Tier::Host) <= 4 << 20);
}

mod zarr {
    use super::*;
    use tessera::io::{from_zarr, ZarrCompressor, ZarrOptions};

    fn options() -> Vec<(&'static str, ZarrOptions)> {
        let o = ZarrOptions::default;
        vec![
            ("v3 zstd", o()),
            (
                "v3 gzip",
                ZarrOptions {
                    compressor: ZarrCompressor::Gzip(5),
                    ..o()
                },
            ),
            (
                "v3 raw + crc32c",
                ZarrOptions {
                    compressor: ZarrCompressor::None,
                    checksum: true,
                    ..o()
                },
            ),
            (
                "v3 zstd + crc32c",
                ZarrOptions {
                    checksum: true,
                    ..o()
                },
            ),
            (
                "v3 blosc",
                ZarrOptions {
                    compressor: ZarrCompressor::Blosc(5),
                    ..o()
                },
            ),
            ("v2 zstd", ZarrOptions { version: 2, ..o() }),
            (
                "v2 blosc",
                ZarrOptions {
                    version: 2,
                    compressor: ZarrCompressor::Blosc(9),
                    ..o()
                },
            ),
            (
                "v2 gzip",
                ZarrOptions {
                    version: 2,
                    compressor: ZarrCompressor::Gzip(1),
                    ..o()
                },
            ),
            (
                "v2 raw",
                ZarrOptions {
                    version: 2,
                    compressor: ZarrCompressor::None,
                    ..o()
                },
            ),
        ]
    }

    #[test]
    fn zarr_on_tmpfs_reads_and_writes() {
        // tmpfs takes O_DIRECT only on recent kernels: whichever way the probes go there, the
        // array round-trips.
        let shm = std::path::Path::new("/dev/shm");
        if !shm.is_dir() {
            println!("skipped: no /dev/shm here");
            return;
        }
        let path = shm.join(format!("tessera-io-test-{}.zarr", std::process::id()));
        let s = cpu_session();
        let h = random_host(&mut StdRng::seed_from_u64(seed()), &[300, 70], DType::F64);
        let t = s.from_host(h.clone()).with_chunks(&[64, 70]).unwrap();
        t.to_zarr(&path, &ZarrOptions::default()).unwrap();
        let got = from_zarr(&s, &path, None).unwrap().execute().unwrap();
        // The folder is this test's own (its name carries the process id).
        let _ = std::fs::remove_dir_all(&path);
        assert!(bits_equal(&got, &h));
    }

    #[test]
    fn zarr_round_trips_are_bit_identical() {
        let mut rng = StdRng::seed_from_u64(seed());
        let dir = Dir::new("zarr-roundtrip");
        let s = cpu_session();
        for dt in DTYPES {
            for (shape, chunks, read) in [
                (vec![37usize, 23], vec![10usize, 7], None),
                (vec![37, 23], vec![10, 7], Some(vec![4usize, 23])),
                (vec![6, 5, 9], vec![4, 2, 3], Some(vec![6, 5, 9])),
                (vec![1000], vec![333], Some(vec![100])),
            ] {
                for (name, mut o) in options() {
                    let h = random_host(&mut rng, &shape, dt);
                    let path = dir.path("a.zarr");
                    let _ = std::fs::remove_dir_all(&path);
                    o.chunks = Some(chunks.clone());
                    let t = s.from_host(h.clone()).with_chunks(&[5]).unwrap();
                    t.to_zarr(&path, &o).unwrap();
                    let back = from_zarr(&s, &path, read.as_deref()).unwrap();
                    if read.is_none() {
                        assert_eq!(
                            back.chunk_hint(),
                            Some(chunks.clone()),
                            "store chunks by default"
                        );
                    }
                    let got = back.execute().unwrap();
                    assert!(
                        bits_equal(&got, &h),
                        "{name} {dt} {shape:?} {chunks:?} {read:?}"
                    );
                    assert_eq!(dir.names(), vec!["a.zarr".to_string()], "no temporary left");
                }
            }
        }
    }

    #[test]
    fn sharded_arrays_are_written_shard_by_shard() {
        let dir = Dir::new("zarr-shards");
        let s = cpu_session();
        let mut rng = StdRng::seed_from_u64(seed());
        let h = random_host(&mut rng, &[100, 70], DType::F64);
        let o = ZarrOptions {
            chunks: Some(vec![10, 10]),
            shards: Some(vec![30, 20]),
            ..ZarrOptions::default()
        };
        let path = dir.path("s.zarr");
        s.from_host(h.clone()).to_zarr(&path, &o).unwrap();
        let writes = s
            .last_stats()
            .per_op
            .iter()
            .find(|(k, _)| k == "write")
            .map(|(_, v)| *v);
        assert_eq!(writes, Some(4 * 4), "one write per shard");
        let got = from_zarr(&s, &path, Some(&[7, 9]))
            .unwrap()
            .execute()
            .unwrap();
        assert!(bits_equal(&got, &h));
        // Shards of a shape that is not a whole number of chunks are refused.
        let bad = ZarrOptions {
            shards: Some(vec![25, 20]),
            ..o.clone()
        };
        assert!(matches!(
            s.from_host(h).to_zarr(dir.path("t.zarr"), &bad),
            Err(Error::InvalidArgument { .. })
        ));
        assert_eq!(dir.names(), vec!["s.zarr".to_string()]);
    }

    #[test]
    fn a_damaged_chunk_is_an_error_naming_it() {
        let dir = Dir::new("zarr-damaged");
        let s = cpu_session();
        let h = HostArray::F64(ndarray::ArrayD::from_shape_fn(
            ndarray::IxDyn(&[60, 40]),
            |i| (i[0] * 40 + i[1]) as f64 + 0.5,
        ));
        let path = dir.path("d.zarr");
        let o = ZarrOptions {
            compressor: ZarrCompressor::None,
            checksum: true,
            chunks: Some(vec![30, 20]),
            ..ZarrOptions::default()
        };
        s.from_host(h).to_zarr(&path, &o).unwrap();
        // Chunk (1, 0) of the v3 default key encoding: c/1/0.
        let chunk = path.join("c").join("1").join("0");
        let mut bytes = std::fs::read(&chunk).unwrap();
        bytes[100] ^= 0x40;
        std::fs::write(&chunk, &bytes).unwrap();
        // Read whole, and through Tessera chunks smaller than the store's: both check the sum.
        for read in [None, Some(&[7usize, 5][..])] {
            let (p, _, msg) = file_err(from_zarr(&s, &path, read).unwrap().execute());
            assert_eq!(p, path.to_str().unwrap());
            assert!(msg.contains("[1, 0]"), "names the store chunk: {msg}");
        }
        // A box away from the damaged chunk reads fine.
        let ok = from_zarr(&s, &path, None)
            .unwrap()
            .slice(&[tessera::SliceArg::Range {
                start: Some(0),
                stop: Some(30),
                step: 1,
            }])
            .unwrap();
        assert_eq!(
            ok.to_array::<f64>().unwrap()[[29, 39]],
            (29 * 40 + 39) as f64 + 0.5
        );
        // Missing metadata, a missing folder, a dtype Tessera lacks.
        let (_, kind, _) = file_err(from_zarr(&s, dir.path("none.zarr"), None));
        assert_eq!(kind, FileError::NotFound);
        std::fs::create_dir(dir.path("empty.zarr")).unwrap();
        let (_, kind, _) = file_err(from_zarr(&s, dir.path("empty.zarr"), None));
        assert_eq!(kind, FileError::NotFound);
        std::fs::remove_file(path.join("zarr.json")).unwrap();
        let (_, kind, _) = file_err(from_zarr(&s, &path, None));
        assert_eq!(kind, FileError::NotFound);
    }

    #[test]
    fn existing_targets_and_failed_writes() {
        let dir = Dir::new("zarr-targets");
        let s = cpu_session();
        let a = s.from_host(HostArray::F32(ndarray::ArrayD::from_elem(
            ndarray::IxDyn(&[50, 8]),
            1.0,
        )));
        let b = s.from_host(HostArray::F32(ndarray::ArrayD::from_elem(
            ndarray::IxDyn(&[50, 8]),
            2.0,
        )));
        let path = dir.path("x.zarr");
        a.to_zarr(&path, &ZarrOptions::default()).unwrap();
        // An existing array is kept unless overwrite is asked for.
        let (_, kind, _) = file_err(b.to_zarr(&path, &ZarrOptions::default()));
        assert_eq!(kind, FileError::Io);
        let over = ZarrOptions {
            overwrite: true,
            ..ZarrOptions::default()
        };
        b.to_zarr(&path, &over).unwrap();
        let got = from_zarr(&s, &path, None)
            .unwrap()
            .to_array::<f32>()
            .unwrap();
        assert!(got.iter().all(|&v| v == 2.0));
        // A folder that is not a Zarr array is never replaced.
        std::fs::create_dir(dir.path("mine")).unwrap();
        std::fs::write(dir.path("mine").join("notes.txt"), b"keep").unwrap();
        assert!(b.to_zarr(dir.path("mine"), &over).is_err());
        assert_eq!(
            std::fs::read(dir.path("mine").join("notes.txt")).unwrap(),
            b"keep"
        );
        // A run that fails mid-way leaves the old array and no temporary folder.
        let src = dir.path("src.npy");
        a.to_npy(&src).unwrap();
        let lazy = load_npy(&s, &src, Some(&[10, 8])).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&src)
            .unwrap()
            .set_len(128 + 4 * 200)
            .unwrap();
        assert!(((&lazy + 1.0) * 2.0).to_zarr(&path, &over).is_err());
        let got = from_zarr(&s, &path, None)
            .unwrap()
            .to_array::<f32>()
            .unwrap();
        assert!(got.iter().all(|&v| v == 2.0), "the old array is intact");
        assert_eq!(
            dir.names(),
            vec![
                "mine".to_string(),
                "src.npy".to_string(),
                "x.zarr".to_string()
            ]
        );
    }

    #[test]
    fn a_zarr_array_larger_than_the_host_budget_is_written_and_read_chunk_by_chunk() {
        let dir = Dir::new("zarr-budget");
        let s: Session = cpu_session();
        s.set_memory(Some(no_disk(4 << 20, 8 << 20)));
        let x = s
            .random(9)
            .rand(&[2000, 2000], DType::F64)
            .with_chunks(&[250, 500])
            .unwrap();
        let path = dir.path("big.zarr");
        ((&x + 1.0) * 2.0)
            .to_zarr(&path, &ZarrOptions::default())
            .unwrap();
        let st = s.last_stats();
        assert!(st.memory.as_ref().unwrap().peak_of(tessera::Tier::Host) <= 8 << 20);
        let back = from_zarr(&s, &path, None).unwrap();
        assert_eq!(
            back.chunk_hint(),
            Some(vec![250, 500]),
            "the tensor's own chunks"
        );
        let v = ((&back - &((&x + 1.0) * 2.0)).abs().unwrap())
            .max(tessera::Axes::All, false)
            .unwrap()
            .item()
            .unwrap();
        assert_eq!(v, 0.0);
        let st = s.last_stats();
        assert_eq!(
            st.memory.as_ref().unwrap().spills,
            0,
            "store chunks are read again, not spilled"
        );
    }
}
