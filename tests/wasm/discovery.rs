//! The default skill discovery (`aos-skill`, a real component built with the
//! guest SDK) under the `skill.discovery.*` hooks: its ranking answers the
//! catalog, its commands act for the calling session, an agent's own
//! `skill.discovery.resolve` wins over it, a `skill.discovery.before`
//! rejection stops it, and a skill discovery hides cannot be loaded. Its
//! commands call the catalog, whose ranking hook is its own: the kernel skips
//! a service waiting in its own syscall instead of letting it wait for itself.

mod common;

use common::{Env, guest, skill};
use serde_json::{Value, json};

async fn env() -> Env {
    let manifest =
        std::fs::read_to_string(aos_testkit::builtin_skills().join("aos-skill/SKILL.md"))
            .expect("the built-in SKILL.md");
    Env::new(|root| {
        let dir = skill(root, "finder", aos_test_artifacts::AOS_SKILL, "  hooks: []");
        let text = manifest.replace("name: aos-skill", "name: finder");
        std::fs::write(dir.join("SKILL.md"), text).expect("SKILL.md");
        guest(
            root,
            "policy",
            "  hooks: [skill.discovery.before, skill.discovery.resolve]",
        );
        let jot = root.join("jot");
        std::fs::create_dir_all(&jot).expect("jot");
        std::fs::write(
            jot.join("SKILL.md"),
            "---\nname: jot\ndescription: A note pad\n---\nWrite things down.\n",
        )
        .expect("SKILL.md");
    })
    .await
}

/// Runs a `finder` command for `session`; returns (exit code, stdout or
/// stderr as JSON).
async fn finder(e: &Env, session: &str, args: &[&str]) -> (i64, Value) {
    let r = e
        .ok(json!({"op": "skill.invoke", "name": "finder", "args": args, "sessionId": session}))
        .await;
    let code = r["exitCode"].as_i64().expect("exit code");
    let text = if code == 0 {
        &r["stdout"]
    } else {
        &r["stderr"]
    };
    let doc = serde_json::from_str(text.as_str().expect("text")).expect("JSON out");
    (code, doc)
}

fn names(doc: &Value) -> Vec<String> {
    doc["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_ranks_lists_and_loads_for_the_calling_session() {
    let e = env().await;
    e.start("finder", "system", json!({})).await;
    let (_, sid) = e.session().await;

    // Its ranking answers the catalog for everyone.
    let cat = e
        .ok(json!({"op": "skill.catalog.refresh", "query": "guard"}))
        .await;
    assert_eq!(cat["resolvedBy"], "finder");
    assert_eq!(cat["catalog"][0]["name"], "my-guard", "{cat}");
    assert!(cat["catalog"][0]["score"].as_u64() > Some(0));

    // Its commands run the same ranking, for the calling session.
    let (code, found) = finder(&e, &sid, &["search", "context", "engine"]).await;
    assert_eq!(code, 0, "{found}");
    assert_eq!(names(&found)[0], "aos-context", "{found}");
    // Another form of a description's word finds it.
    let (code, found) = finder(&e, &sid, &["search", "notes"]).await;
    assert_eq!(
        (code, names(&found).first().map(String::as_str)),
        (0, Some("jot")),
        "{found}"
    );
    let (_, all) = finder(&e, &sid, &["list"]).await;
    assert!(names(&all).contains(&"finder".to_string()), "{all}");
    let (code, loaded) = finder(&e, &sid, &["load", "my-guard"]).await;
    assert_eq!(code, 0, "{loaded}");
    let h = e
        .ok(json!({"op": "session.history.list", "sessionId": sid, "limit": 1000}))
        .await;
    let last = h["messages"].as_array().expect("messages").last().cloned();
    assert_eq!(
        last.as_ref()
            .map(|m| (&m["parts"][0]["type"], &m["parts"][0]["data"]["name"])),
        Some((&json!("data-skill-load"), &json!("my-guard")))
    );
    // A service is never made to wait for itself.
    assert!(e.log("hook.failed").await.is_empty());

    // Bad commands say what is wrong.
    let (code, err) = finder(&e, &sid, &["search", "--limit", "0", "x"]).await;
    assert_eq!(
        (code, &err["code"]),
        (1, &json!("request.invalid")),
        "{err}"
    );
    let (code, err) = finder(&e, &sid, &["dance"]).await;
    assert_eq!(
        (code, &err["code"]),
        (1, &json!("request.invalid")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_own_discovery_wins_and_hides_what_it_leaves_out() {
    let e = env().await;
    e.start("finder", "system", json!({})).await;
    let (agent, sid) = e.session().await;
    let only = json!({"selected": [{"name": "my-guard", "description": "the one skill here"}]});
    e.start(
        "policy",
        &format!("agent:{agent}"),
        json!({"hooks": ["skill.discovery.resolve"], "do": {"skill.discovery.resolve": "set"},
               "set": {"skill.discovery.resolve": only}}),
    )
    .await;
    let (_, listed) = finder(&e, &sid, &["list"]).await;
    assert_eq!(names(&listed), ["my-guard"], "{listed}");
    let revision =
        || async { e.ok(json!({"op": "session.get", "sessionId": sid})).await["revision"].clone() };
    let before = revision().await;
    let (code, err) = finder(&e, &sid, &["load", "aos-context"]).await;
    assert_eq!(
        (code, &err["code"]),
        (1, &json!("skill.not_found")),
        "{err}"
    );
    assert_eq!(revision().await, before, "nothing was written");
    let (code, _) = finder(&e, &sid, &["load", "my-guard"]).await;
    assert_eq!(code, 0);

    // Another session of the system sees the whole catalog.
    let (_, other) = e.session().await;
    let (_, listed) = finder(&e, &other, &["list"]).await;
    assert!(names(&listed).len() > 1, "{listed}");

    // A rejecting `skill.discovery.before` stops discovery for its session.
    e.start(
        "policy",
        &format!("session:{other}"),
        json!({"hooks": ["skill.discovery.before"], "do": {"skill.discovery.before": "reject"}}),
    )
    .await;
    let (code, err) = finder(&e, &other, &["search", "guard"]).await;
    assert_eq!((code, &err["code"]), (1, &json!("hook.rejected")), "{err}");
}
