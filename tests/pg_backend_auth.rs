//! Authentication towards servers: switchyard answers md5, cleartext and trust as well as
//! SCRAM, and a login the server refuses reaches the client with the server's SQLSTATE.

mod common;

use common::*;
use switchyard_testbed::{PgCluster, PgOptions};

#[tokio::test]
async fn every_server_auth_method_works() {
    let pg = PgCluster::start(PgOptions {
        replicas: 0,
        ..PgOptions::default()
    })
    .expect("start primary");
    pg.psql(
        0,
        "SET password_encryption = 'md5'; CREATE ROLE u_md5 LOGIN PASSWORD 'pw_md5';
         SET password_encryption = 'scram-sha-256'; CREATE ROLE u_clear LOGIN PASSWORD 'pw_clear';
         CREATE ROLE u_trust LOGIN; CREATE ROLE u_bad LOGIN PASSWORD 'real';
         GRANT CONNECT ON DATABASE app TO u_md5, u_clear, u_trust, u_bad",
    )
    .expect("roles");
    let hba = pg.primary().data_dir.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
    let lines = "host all u_md5 127.0.0.1/32 md5\nhost all u_clear 127.0.0.1/32 password\nhost all u_trust 127.0.0.1/32 trust\n";
    std::fs::write(&hba, format!("{lines}{old}")).expect("write pg_hba.conf");
    pg.psql(0, "SELECT pg_reload_conf()").expect("reload");

    let mut config = config_for(&pg, &[], "");
    for (user, pass) in [
        ("u_md5", "pw_md5"),
        ("u_clear", "pw_clear"),
        ("u_trust", "any"),
        ("u_bad", "fake"),
    ] {
        config += &format!("\n[[clusters.users]]\nname = \"{user}\"\npassword = \"{pass}\"\n");
    }
    let p = start_proxy(&config);
    for (user, pass) in [
        ("u_md5", "pw_md5"),
        ("u_clear", "pw_clear"),
        ("u_trust", "any"),
        ("app", "app"),
    ] {
        let (c, conn) =
            tokio_postgres::connect(&conn_str(p.addr, user, pass), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{user}: {e}"));
        tokio::spawn(conn);
        let row = c
            .query_one("SELECT current_user::text", &[])
            .await
            .expect("query");
        assert_eq!(row.get::<_, String>(0), user);
    }
    // The proxy accepts u_bad's configured password, but the server does not.
    let err = tokio_postgres::connect(&conn_str(p.addr, "u_bad", "fake"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("server refuses");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{err}"
    );
}
