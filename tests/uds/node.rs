//! A JavaScript service (`.js` → `node`), speaking the protocol with only
//! Node's standard library.

mod common;

use aos_types::hook;
use common::Env;
use serde_json::json;

const GUARD_JS: &str = r#"
const net = require('net');
const sock = net.createConnection(process.env.AOS_SERVICE_SOCKET);
let buf = '';
const send = (m) => sock.write(JSON.stringify(Object.assign({ jsonrpc: '2.0' }, m)) + '\n');
sock.on('connect', () => send({ id: 1, method: 'register', params: { hooks: ['tool.before'] } }));
sock.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const m = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (m.method === 'shutdown') process.exit(0);
    if (m.method === 'hook') {
      const cmd = m.params.output.args.command || '';
      send({ id: m.id, result: cmd.includes('rm -rf /')
        ? { verdict: 'reject', reason: 'blocked by node' }
        : m.params.output });
    }
  }
});
sock.on('end', () => process.exit(0));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_service_guards_like_a_python_one() {
    let e = Env::new(|root| {
        common::skill(
            root,
            "js-guard",
            "service.js",
            GUARD_JS.as_bytes(),
            "  hooks: [tool.before]",
        );
    })
    .await;
    let v = e.start("js-guard", "system").await;
    assert_eq!(v["kind"], "legacy");
    let (agent, sid) = e.session().await;
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "rm -rf /"}}),
        )
        .await
        .expect_err("blocked");
    assert!(err.message.contains("blocked by node"), "{}", err.message);
    let ok = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await;
    assert_eq!(ok.ok(), Some(json!({"args": {"command": "ls"}})));
    let pid = v["pid"].as_u64().expect("pid");
    e.ok(json!({"op": "skill.stop", "instanceId": v["instanceId"]}))
        .await;
    common::wait_gone(pid).await;
}
