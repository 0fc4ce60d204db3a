//! Tiling tests on the NullBackend: chunk counts, grids and task structure, no execution.

use std::sync::Arc;
use tessera_runtime::chunk::{ChunkGraph, ChunkOp};
use tessera_runtime::{Axes, DType, NullBackend, Session};

fn null() -> Session {
    let s = Session::new(Arc::new(NullBackend));
    s.set_fusion(false);
    s
}

fn count(cg: &ChunkGraph, name: &str) -> usize {
    cg.nodes.iter().filter(|n| n.op.name() == name).count()
}

#[test]
fn mars_example_1000x2000_chunk_500_is_8_chunks() {
    let s = null();
    let a = s
        .ones(&[1000, 2000], DType::F64)
        .with_chunks(&[500])
        .unwrap();
    let (cg, tiled) = s.plan(&[&a]).unwrap();
    assert_eq!(tiled[0].grid, vec![vec![500, 500], vec![500; 4]]);
    assert_eq!(tiled[0].chunks.len(), 8);
    assert_eq!(cg.len(), 8);
}

#[test]
fn elementwise_unifies_different_grids_by_union_of_boundaries() {
    let s = null();
    let a = s.ones(&[10], DType::F32).with_chunks(&[5]).unwrap();
    let b = s.zeros(&[10], DType::F32).with_chunks(&[3]).unwrap();
    let c = a.add(&b).unwrap();
    let (cg, tiled) = s.plan(&[&c]).unwrap();
    assert_eq!(tiled[0].grid, vec![vec![3, 2, 1, 3, 1]]);
    assert_eq!(count(&cg, "binary"), 5);
    assert!(count(&cg, "assemble") > 0, "both inputs are re-cut");
}

#[test]
fn same_grids_need_no_rechunk_and_broadcast_reuses_the_single_chunk() {
    let s = null();
    let a = s.ones(&[12, 8], DType::F32).with_chunks(&[4, 4]).unwrap();
    let row = s.ones(&[8], DType::F32).with_chunks(&[4]).unwrap();
    let col = s.ones(&[12, 1], DType::F32).with_chunks(&[4, 1]).unwrap();
    let c = (&a + &row) * &col;
    let (cg, tiled) = s.plan(&[&c]).unwrap();
    assert_eq!(tiled[0].chunks.len(), 6);
    assert_eq!(count(&cg, "assemble"), 0);
    assert_eq!(count(&cg, "binary"), 12);
}

#[test]
fn reduction_is_partials_then_a_fan_in_4_tree_then_final() {
    let s = null();
    let a = s.ones(&[16_000], DType::F32).with_chunks(&[1000]).unwrap();
    let t = a.sum(Axes::All, false).unwrap();
    let (cg, _) = s.plan(&[&t]).unwrap();
    assert_eq!(count(&cg, "reduce_partial"), 16);
    assert_eq!(count(&cg, "reduce_combine"), 4 + 1);
    assert_eq!(count(&cg, "reduce_final"), 1);
}

#[test]
fn reduction_over_one_axis_keeps_the_other_grid() {
    let s = null();
    let a = s.ones(&[9, 8], DType::F64).with_chunks(&[3, 2]).unwrap();
    let t = a.var(1, true, 1).unwrap();
    let (cg, tiled) = s.plan(&[&t]).unwrap();
    assert_eq!(tiled[0].grid, vec![vec![3, 3, 3], vec![1]]);
    assert_eq!(count(&cg, "reduce_final"), 3);
    assert_eq!(count(&cg, "reduce_combine"), 3);
}

#[test]
fn matmul_accumulates_chunk_products_along_k_in_order() {
    let s = null();
    let a = s
        .ones(&[40, 30], DType::F32)
        .with_chunks(&[10, 10])
        .unwrap();
    let b = s
        .ones(&[30, 20], DType::F32)
        .with_chunks(&[10, 10])
        .unwrap();
    let c = a.matmul(&b).unwrap();
    let (cg, tiled) = s.plan(&[&c]).unwrap();
    assert_eq!(tiled[0].chunks.len(), 8);
    assert_eq!(count(&cg, "matmul"), 8 * 3);
    for &out in &tiled[0].chunks {
        // Walk the chain back: accumulate, accumulate, first product.
        let mut c = out;
        let mut depth = 0;
        loop {
            let n = cg.node(c);
            let ChunkOp::MatMul { accumulate } = n.op else {
                panic!("not a matmul")
            };
            depth += 1;
            if !accumulate {
                break;
            }
            c = n.inputs[2];
        }
        assert_eq!(depth, 3);
    }
}

#[test]
fn automatic_chunks_respect_the_byte_budget() {
    let s = null();
    s.set_chunk_bytes(4000).unwrap();
    let a = s.random(1).rand(&[100, 100], DType::F32);
    let (cg, tiled) = s.plan(&[&a]).unwrap();
    assert!(tiled[0].chunks.len() >= 10);
    for n in &cg.nodes {
        assert!(n.nbytes() <= 4000, "chunk {:?} over budget", n.shape);
    }
}

#[test]
fn same_subexpression_is_one_node() {
    let s = null();
    let x = s.random(3).rand(&[100], DType::F32);
    let a = (&x + 1.0) * 2.0;
    let b = (&x + 1.0) * 2.0;
    assert_eq!(a.node_id().unwrap(), b.node_id().unwrap());
    let g = s.graph();
    assert_eq!(g.len(), 5, "rand, two scalars, add, mul");
}

#[test]
fn null_backend_plans_but_refuses_to_run() {
    let s = null();
    let a = s.ones(&[4], DType::F32);
    let err = a.execute().unwrap_err();
    assert!(
        matches!(err, tessera_runtime::Error::Unsupported { .. }),
        "{err}"
    );
}

#[test]
fn tall_skinny_qr_and_svd_run_as_a_tree_over_row_blocks() {
    let s = null();
    // 2.5 MB of f64, more than one chunk's budget.
    s.set_chunk_bytes(1 << 20).unwrap();
    // 40 row blocks of 1000 x 8: leaves, then a tree of fan-in 16 (3 + 1 nodes above them).
    let a = s
        .ones(&[40_000, 8], DType::F64)
        .with_chunks(&[1000, 8])
        .unwrap();
    let (q, r) = a.qr(false).unwrap();
    let (cg, tiled) = s.plan(&[&q, &r]).unwrap();
    assert_eq!(count(&cg, "qr"), 40 + 3 + 1);
    assert!(
        cg.nodes
            .iter()
            .all(|n| n.shape.iter().product::<usize>() <= (1000 + 8) * 8),
        "no chunk holds the whole matrix"
    );
    assert_eq!(tiled[0].grid[0], vec![1000; 40], "Q keeps the row blocks");
    assert_eq!(tiled[1].chunks.len(), 1);
    let (u, sv, vt) = a.svd(false).unwrap();
    let (cg, tiled) = s.plan(&[&u, &sv, &vt]).unwrap();
    assert_eq!(count(&cg, "svd"), 1, "one SVD, of the final R");
    assert_eq!(tiled[0].grid[0], vec![1000; 40]);
    let (cg, _) = s.plan(&[&a.svdvals().unwrap()]).unwrap();
    assert_eq!(count(&cg, "svdvals"), 1);
    assert_eq!(count(&cg, "matmul"), 0, "singular values alone need no Q");
    // A wide matrix with chunked columns: through its transpose, the same tree.
    let w = s
        .ones(&[8, 40_000], DType::F64)
        .with_chunks(&[8, 1000])
        .unwrap();
    let (u, sv, vt) = w.svd(false).unwrap();
    assert_eq!(
        (u.shape(), vt.shape()),
        (&[8usize, 8][..], &[8usize, 40_000][..])
    );
    let (cg, _) = s.plan(&[&u, &sv, &vt]).unwrap();
    assert_eq!(count(&cg, "qr"), 40 + 3 + 1);
    // A matrix within one chunk's budget calls the kernel once, however it is chunked.
    let b = s.ones(&[300, 8], DType::F64).with_chunks(&[30, 8]).unwrap();
    let (cg, _) = s.plan(&[&b.qr(false).unwrap().0]).unwrap();
    assert_eq!(count(&cg, "qr"), 1);
}

#[test]
fn a_gram_matrix_is_a_symmetric_product() {
    let s = null();
    let a = s
        .ones(&[3000, 2000], DType::F32)
        .with_chunks(&[1000, 1000])
        .unwrap();
    let g = a.dot(&a.matrix_transpose().unwrap()).unwrap();
    let (cg, tiled) = s.plan(&[&g]).unwrap();
    assert_eq!(tiled[0].grid, vec![vec![1000; 3], vec![1000; 3]]);
    // 3 diagonal blocks of 2 K steps each; 3 blocks below the diagonal, 2 K steps each;
    // the 3 above the diagonal mirrored.
    assert_eq!(count(&cg, "syrk"), 3 * 2);
    assert_eq!(count(&cg, "matmul"), 3 * 2);
    let b = s
        .random(2)
        .rand(&[3000, 2000], DType::F32)
        .with_chunks(&[1000, 1000])
        .unwrap();
    let (cg, _) = s
        .plan(&[&a.dot(&b.matrix_transpose().unwrap()).unwrap()])
        .unwrap();
    assert_eq!(
        count(&cg, "syrk"),
        0,
        "a different right operand is a general product"
    );
    assert_eq!(count(&cg, "matmul"), 9 * 2);
}
