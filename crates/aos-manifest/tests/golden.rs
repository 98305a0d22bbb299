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
