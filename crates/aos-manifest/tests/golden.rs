//! Golden tests: every fixture under `tests/fixtures/good` parses, every one
//! under `tests/fixtures/bad` fails with the error in its `expected-error.txt`,
//! and a scan of both roots reports the bad ones without hiding the good ones.

use aos_manifest::{ServiceKind, parse_skill_md, scan_roots};
use std::path::{Path, PathBuf};

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

fn dirs(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixtures(kind))
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_good_fixture_parses() {
    let good = dirs("good");
    assert!(good.len() >= 5);
    for dir in good {
        let text = std::fs::read_to_string(dir.join("SKILL.md")).expect("read");
        let m = parse_skill_md(&text, &dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert_eq!(m.name, dir.file_name().expect("name").to_string_lossy());
        assert!(!m.body.is_empty());
    }
}

#[test]
fn every_bad_fixture_fails_with_its_message() {
    let bad = dirs("bad");
    assert!(bad.len() >= 15);
    for dir in bad {
        let text = std::fs::read_to_string(dir.join("SKILL.md")).expect("read");
        let want = std::fs::read_to_string(dir.join("expected-error.txt")).expect("expected");
        let err = parse_skill_md(&text, &dir).expect_err(&format!("{} must fail", dir.display()));
        assert!(
            err.to_string().contains(want.trim()),
            "{}: got {err:?}, want it to mention {want:?}",
            dir.display()
        );
    }
}

#[test]
fn third_party_fields_are_kept_and_unknown_ones_warned() {
    let dir = fixtures("good").join("docx-tools");
    let m = parse_skill_md(
        &std::fs::read_to_string(dir.join("SKILL.md")).expect("read"),
        &dir,
    )
    .expect("parse");
    assert_eq!(
        m.license.as_ref().and_then(|v| v.as_str()),
        Some("Apache-2.0")
    );
    assert_eq!(
        m.metadata.as_ref().expect("metadata")["author"],
        "example-org"
    );
    assert!(m.allowed_tools.is_some() && m.compatibility.is_some());
    assert!(m.extra.contains_key("x-vendor-tags"));
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(m.warnings[0].contains("x-vendor-tags"));
}

#[test]
fn capabilities_are_read_exactly() {
    let dir = fixtures("good").join("my-guard-wasm");
    let m = parse_skill_md(
        &std::fs::read_to_string(dir.join("SKILL.md")).expect("read"),
        &dir,
    )
    .expect("parse");
    let svc = m.service.expect("service");
    assert_eq!(
        (svc.path.as_str(), svc.kind),
        ("./service.wasm", ServiceKind::Wasm)
    );
    assert_eq!(m.capabilities.hooks, vec!["tool.before"]);
    assert_eq!(m.capabilities.fs.len(), 2);
    assert_eq!(m.capabilities.limits.memory_mb, Some(64));
    assert_eq!(m.capabilities.limits.fuel, None);
}

#[test]
fn a_service_symlinked_outside_the_skill_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("sneaky");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(tmp.path().join("outside.py"), "print(1)").expect("write");
    std::os::unix::fs::symlink(tmp.path().join("outside.py"), dir.join("service.py"))
        .expect("symlink");
    let text = "---\nname: sneaky\ndescription: d\nservice: ./service.py\n---\nx\n";
    let err = parse_skill_md(text, &dir).expect_err("escape");
    assert!(
        err.to_string().contains("outside the skill directory"),
        "{err}"
    );
}

#[test]
fn a_scan_reports_bad_skills_and_keeps_the_good() {
    let index = scan_roots(&[fixtures("good"), fixtures("bad"), fixtures("good")]);
    assert_eq!(index.valid_count(), dirs("good").len());
    assert!(index.get("pdf").is_some());
    let broken = index.entry("bad-yaml").expect("reported");
    assert!(broken.error.as_deref().expect("error").contains("YAML"));
    // The second copy of each good skill is reported as a duplicate.
    let dupes = index
        .entries
        .iter()
        .filter(|e| {
            e.error
                .as_deref()
                .is_some_and(|x| x.contains("already provided"))
        })
        .count();
    assert_eq!(dupes, dirs("good").len());
}

fn write_skill(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("SKILL.md"),
        format!("---\nname: {name}\ndescription: d\n---\nbody\n"),
    )
    .expect("write");
    dir
}

#[test]
fn a_symlinked_skill_keeps_its_own_name_and_stays_in_its_root() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (early, builtin, elsewhere) = (
        tmp.path().join("early"),
        tmp.path().join("builtin"),
        tmp.path().join("elsewhere"),
    );
    write_skill(&builtin, "aos-context");
    write_skill(&elsewhere, "aos-context");
    write_skill(&early, "real");
    // The attack: a link in an earlier root, named for the built-in's
    // target, or pointing inside its own root under another name.
    std::os::unix::fs::symlink(elsewhere.join("aos-context"), early.join("aos-context"))
        .expect("link");
    std::os::unix::fs::symlink(early.join("real"), early.join("alias")).expect("link");
    let index = scan_roots(&[early.clone(), builtin.clone()]);
    let winner = index
        .entries
        .iter()
        .find(|e| e.name == "aos-context" && e.manifest.is_some())
        .expect("the built-in is served");
    assert!(
        winner
            .dir
            .starts_with(builtin.canonicalize().expect("canon")),
        "{winner:?}"
    );
    let refused: Vec<_> = index
        .entries
        .iter()
        .filter_map(|e| e.error.clone())
        .collect();
    assert!(
        refused.iter().any(|e| e.contains("outside the skill root")),
        "{refused:?}"
    );
    assert!(index.get("alias").is_none(), "a link takes no other name");
    assert!(
        refused
            .iter()
            .any(|e| e.contains("must equal its directory name `alias`")),
        "{refused:?}"
    );
}

#[test]
fn an_oversized_skill_md_and_a_duplicate_are_refused_with_paths() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let big = write_skill(&a, "big");
    let mut text = std::fs::read_to_string(big.join("SKILL.md")).expect("read");
    text.push_str(&"x".repeat(aos_manifest::MAX_SKILL_MD_BYTES as usize));
    std::fs::write(big.join("SKILL.md"), text).expect("write");
    let first = write_skill(&a, "same");
    let second = write_skill(&b, "same");
    let index = scan_roots(&[a, b]);
    assert!(index.get("big").is_none());
    let e = index
        .entry("big")
        .and_then(|e| e.error.clone())
        .expect("error");
    assert!(e.contains("at most 1048576"), "{e}");
    let dupe = index
        .entries
        .iter()
        .find_map(|e| e.error.clone().filter(|x| x.contains("already provided")))
        .expect("duplicate");
    for dir in [first, second] {
        let dir = dir.canonicalize().expect("canon");
        assert!(dupe.contains(&dir.display().to_string()), "{dupe}");
    }
}

#[test]
fn a_re_index_parses_only_what_changed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    for n in ["one", "two", "three"] {
        write_skill(&root, n);
    }
    let mut cache = aos_manifest::ScanCache::default();
    let index = aos_manifest::scan_roots_cached(std::slice::from_ref(&root), None, &mut cache);
    assert_eq!((index.valid_count(), cache.parsed), (3, 3));
    let index = aos_manifest::scan_roots_cached(std::slice::from_ref(&root), None, &mut cache);
    assert_eq!(
        (index.valid_count(), cache.parsed),
        (3, 0),
        "nothing changed"
    );
    // A change (another size) to one SKILL.md; a new skill.
    std::fs::write(
        root.join("two/SKILL.md"),
        "---\nname: two\ndescription: changed\n---\nnew body\n",
    )
    .expect("write");
    write_skill(&root, "four");
    let index = aos_manifest::scan_roots_cached(std::slice::from_ref(&root), None, &mut cache);
    assert_eq!((index.valid_count(), cache.parsed), (4, 2));
    assert_eq!(index.get("two").expect("two").description, "changed");
    std::fs::remove_dir_all(root.join("one")).expect("rm");
    let index = aos_manifest::scan_roots_cached(std::slice::from_ref(&root), None, &mut cache);
    assert_eq!((index.valid_count(), cache.parsed), (3, 0));
    assert!(index.get("one").is_none());
}

#[test]
fn built_in_names_are_reserved_whatever_the_order_of_roots() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mine, builtin) = (tmp.path().join("mine"), tmp.path().join("builtin"));
    let real = write_skill(&builtin, "aos-context");
    let impostor = write_skill(&mine, "aos-context");
    write_skill(&mine, "own");
    let mut cache = aos_manifest::ScanCache::default();
    let roots = [mine.clone(), builtin.clone()];
    let index = aos_manifest::scan_roots_cached(&roots, Some(&builtin), &mut cache);
    let served = index
        .entries
        .iter()
        .find(|e| e.name == "aos-context" && e.manifest.is_some())
        .expect("served");
    assert_eq!(served.dir, real.canonicalize().expect("canon"));
    let refused = index
        .entries
        .iter()
        .find_map(|e| e.error.clone().filter(|x| x.contains("built-in skill")))
        .expect("the impostor is refused");
    assert!(
        refused.contains(
            &impostor
                .canonicalize()
                .expect("canon")
                .display()
                .to_string()
        ),
        "{refused}"
    );
    assert!(index.get("own").is_some());
    // Without a built-in root, an earlier root still wins, as documented.
    let index = aos_manifest::scan_roots(&roots);
    let first = index
        .entries
        .iter()
        .find(|e| e.name == "aos-context" && e.manifest.is_some())
        .expect("served");
    assert_eq!(first.dir, impostor.canonicalize().expect("canon"));
}
