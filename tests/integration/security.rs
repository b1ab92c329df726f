//! Files stay private: everything tonedesk writes is 0600 in a 0700 home, and `doctor` names any
//! file or folder others can read, with the `chmod` that fixes it.

use std::os::unix::fs::PermissionsExt;

use crate::{home, ok, run, stdout};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

#[test]
fn everything_written_is_private_and_doctor_names_what_is_not() {
    let (_d, h) = home();
    let q: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["queue", "--json"])).unwrap();
    let id = crate::first_with(&q, false).to_string();
    ok(
        &h,
        &["reply", &id, "--template", "neutral-invite-dm", "--yes"],
    );
    let mut all = Vec::new();
    walk(&h, &mut all);
    assert!(all.len() > 8, "{all:?}");
    assert_eq!(mode(&h), 0o700);
    for p in &all {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{} is {:o}", p.display(), mode(p));
    }
    assert!(ok(&h, &["doctor"]).contains("ok "));

    // Someone loosens a library file and the config: doctor says so, with the fix, and fails.
    let lib = h.join("library/general.toml");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(h.join("config.toml"), "operator = \"Tess\"\n").unwrap();
    std::fs::set_permissions(
        h.join("config.toml"),
        std::fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    let o = run(&h, &["doctor"]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains(&format!("run chmod 600 {}", lib.display())),
        "{out}"
    );
    assert!(out.contains("config.toml is 664"), "{out}");
}
