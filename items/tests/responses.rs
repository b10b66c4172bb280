//! Reading response data: wide and long, missing stays missing, codes map to categories.

use etalon_items::*;
use std::io::Write;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    if name.ends_with(".gz") {
        let f = std::fs::File::create(&p).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(&p, text).unwrap();
    }
    p
}

#[test]
fn wide_with_missing_and_likert_codes() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["w.csv", "w.csv.gz"] {
        let p = write(&dir, name, "person,i1,i2,lik\nann,1,NA,4\nbob,0,,2\ncat,1,1,1\n");
        let m = ResponseMatrix::read_wide(&p).unwrap();
        assert_eq!((m.n_persons(), m.n_items()), (3, 3));
        assert_eq!(m.person_ids().unwrap(), ["ann", "bob", "cat"]);
        assert_eq!(m.row(0), &[1, MISSING, 2]);
        assert_eq!(m.row(1), &[0, MISSING, 1]);
        assert_eq!(m.row(2), &[1, 0, 0]);
        assert_eq!(m.codes(2), &[1, 2, 4]);
        assert_eq!(m.codes(1), &[1]);
        let s = m.to_sparse();
        assert_eq!(s.n_responses(), 7);
        assert_eq!(s.person(0), (&[0u32, 2][..], &[1u8, 2][..]));
    }
}

#[test]
fn wide_without_person_column_uses_row_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "w.csv", "\"a\",\"b\"\n0,1\n1,1\n");
    let r = read_responses(&p, DataFormat::Wide).unwrap();
    assert_eq!(r.person_label(1), "2");
}

#[test]
fn wide_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "w.csv", "a,b\n0,1\n1,x\n");
    let e = ResponseMatrix::read_wide(&p).unwrap_err().to_string();
    assert!(
        e.contains("line 3") && e.contains("`b`") && e.contains("`x`"),
        "{e}"
    );
    let p = write(&dir, "w2.csv", "a,b\n0,1\n1,1,1\n");
    let e = ResponseMatrix::read_wide(&p).unwrap_err().to_string();
    assert!(e.contains("line 3"), "{e}");
    let p = write(&dir, "w3.csv", "a,b\n0,1.5\n");
    assert!(
        ResponseMatrix::read_wide(&p)
            .unwrap_err()
            .to_string()
            .contains("not an integer")
    );
    let p = write(&dir, "w4.csv", "");
    assert!(matches!(
        ResponseMatrix::read_wide(&p),
        Err(DataError::Empty { .. })
    ));
    let p = write(&dir, "w5.csv", "a,a\n0,1\n");
    assert!(
        ResponseMatrix::read_wide(&p)
            .unwrap_err()
            .to_string()
            .contains("duplicate")
    );
    assert!(matches!(
        ResponseMatrix::read_wide(dir.path().join("none.csv")),
        Err(DataError::NotFound { .. })
    ));
}

#[test]
fn long_format_groups_by_person_and_rejects_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "l.csv",
        "person,item,response\np1,i1,1\np2,i2,0\np1,i3,3\np2,i1,0\n",
    );
    let s = SparseResponses::read_long(&p).unwrap();
    assert_eq!(s.person_ids(), ["p1", "p2"]);
    assert_eq!(s.item_ids(), ["i1", "i2", "i3"]);
    assert_eq!(s.person(0), (&[0u32, 2][..], &[1u8, 0][..]));
    assert_eq!(s.person(1), (&[1u32, 0][..], &[0u8, 0][..]));
    assert_eq!(s.codes(0), &[0, 1]);
    let p = write(&dir, "d.csv", "person,item,response\np1,i1,1\np1,i1,0\n");
    let e = SparseResponses::read_long(&p).unwrap_err();
    assert!(matches!(e, DataError::DuplicateResponse { .. }), "{e}");
    let p = write(&dir, "h.csv", "who,item,response\np1,i1,1\n");
    assert!(
        SparseResponses::read_long(&p)
            .unwrap_err()
            .to_string()
            .contains("person")
    );
}

#[test]
fn alignment_maps_codes_through_the_bank() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "w.csv", "g,x\n1,0\n4,1\n2,1\n");
    let r = read_responses(&p, DataFormat::Wide).unwrap();
    let mut g = Item::new("g", ItemModel::graded(1.0, vec![-1.0, 0.0, 1.0]).unwrap());
    g.codes = Some(vec![1, 2, 3, 4]);
    let x = Item::new("x", ItemModel::two_pl(1.0, 0.0).unwrap());
    let bank = Bank::new(
        "b",
        Framework::default(),
        vec![x, g.clone()],
        Provenance::default(),
    )
    .unwrap();
    let al = r.align(&bank).unwrap();
    assert_eq!(al.columns, vec![1, 0]);
    assert_eq!(al.categories[0], vec![0, 1, 3]); // data codes 1, 2, 4
    // A code the item does not have.
    let p = write(&dir, "w2.csv", "g\n5\n");
    let e = read_responses(&p, DataFormat::Wide)
        .unwrap()
        .align(&bank)
        .unwrap_err();
    assert!(matches!(e, DataError::UnknownCode { code: 5, .. }), "{e}");
    // Items missing from the bank are named.
    let p = write(&dir, "w3.csv", "g,zz,yy\n1,0,0\n");
    let e = read_responses(&p, DataFormat::Wide)
        .unwrap()
        .align(&bank)
        .unwrap_err()
        .to_string();
    assert!(e.contains("zz") && e.contains("yy"), "{e}");
}

#[test]
fn shared_datasets_load() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference/data");
    let m = ResponseMatrix::read_wide(data.join("SAT12_missingNA.csv")).unwrap();
    assert_eq!((m.n_persons(), m.n_items()), (600, 32));
    assert_eq!(m.cells().iter().filter(|&&c| c == MISSING).count(), 69);
    let s = ResponseMatrix::read_wide(data.join("Science.csv")).unwrap();
    assert_eq!(s.codes(0), &[1, 2, 3, 4]);
    let g = ResponseMatrix::read_wide(data.join("sim_1000x20.csv.gz")).unwrap();
    assert_eq!((g.n_persons(), g.n_items()), (1000, 20));
}
