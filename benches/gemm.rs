//! SGEMM/DGEMM on the CPU: matrixmultiply (what tessera-cpu uses, through ndarray) against the
//! `gemm` crate, same sizes, same inputs. Run with
//! `cargo bench --features gemm-compare --bench gemm`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;

fn inputs(n: usize) -> (Array2<f32>, Array2<f32>) {
    let a = Array2::from_shape_fn((n, n), |(i, j)| {
        ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5
    });
    let b = Array2::from_shape_fn((n, n), |(i, j)| {
        ((i * 13 + j * 29) % 89) as f32 / 89.0 - 0.5
    });
    (a, b)
}

fn with_gemm_crate(a: &Array2<f32>, b: &Array2<f32>, c: &mut Array2<f32>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    // SAFETY: the three arrays are standard-layout (row-major) with the dimensions passed, so
    // every pointer/stride pair addresses memory inside its own allocation; c does not alias.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

fn bench(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("sgemm");
    g.sample_size(10);
    for n in [512usize, 1024, 2048] {
        let (a, b) = inputs(n);
        let mut c = Array2::<f32>::zeros((n, n));
        let mut c2 = Array2::<f32>::zeros((n, n));
        general_mat_mul(1.0, &a, &b, 0.0, &mut c);
        with_gemm_crate(&a, &b, &mut c2);
        let err = (&c - &c2).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
        assert!(err < 1e-2, "the two GEMMs disagree by {err}");
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        g.bench_with_input(BenchmarkId::new("matrixmultiply", n), &n, |bch, _| {
            bch.iter(|| general_mat_mul(1.0, &a, &b, 0.0, &mut c))
        });
        g.bench_with_input(BenchmarkId::new("gemm-crate", n), &n, |bch, _| {
            bch.iter(|| with_gemm_crate(&a, &b, &mut c2))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
