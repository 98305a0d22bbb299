//! With no server to use, the test kit makes its own PostgreSQL cluster from
//! the installed binaries: the store works on it, and it is gone once dropped.

use aos_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_starts_a_postgres_of_its_own_and_stops_it() {
    let cluster = tokio::task::spawn_blocking(aos_testkit::pg::Cluster::start)
        .await
        .expect("join")
        .expect("a cluster from the installed binaries");
    let store = Store::open(&cluster.url).await.expect("a store on it");
    let acb = aos_testkit::acb();
    store.agent_insert(&acb).await.expect("a write");
    let back = store.agent_get(&acb.agent_id).await.expect("read back");
    assert_eq!(back.agent_id, acb.agent_id);
    store.close().await;
    let url = cluster.url.clone();
    drop(cluster);
    assert!(
        Store::open(&url).await.is_err(),
        "the cluster is stopped once dropped"
    );
}
