//! Volumes: create, fork, restore, extend, snapshots, delete.

use fly_api::Error;
use fly_api::models::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::{self, FlyMock, volume_json};
use crate::{APP, MID, VID};

#[tokio::test]
async fn volumes_create_get_list_delete() {
    let fly = FlyMock::start().await;
    let base = format!("/v1/apps/{APP}/volumes");
    fly.on("POST", &base, 200, volume_json(VID)).await;
    fly.on("GET", &format!("{base}/{VID}"), 200, volume_json(VID))
        .await;
    fly.on("GET", &base, 200, json!([volume_json(VID)])).await;
    let mut deleted = volume_json(VID);
    deleted["state"] = json!("scheduling_destroy");
    fly.on("DELETE", &format!("{base}/{VID}"), 200, deleted)
        .await;
    let volumes = fly.client().volumes(APP);
    let created = volumes
        .create(&CreateVolumeRequest {
            name: "ws_data".into(),
            region: Some("ams".into()),
            size_gb: Some(10),
            encrypted: Some(true),
            require_unique_zone: Some(false),
            snapshot_retention: Some(5),
            compute: Some(MachineGuest {
                cpu_kind: Some("shared".into()),
                cpus: Some(1),
                memory_mb: Some(2048),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, VID);
    assert_eq!(created.state, VolumeState::Created);
    assert_eq!(created.size_gb, 10);
    assert_eq!(created.attached_machine(), None);
    assert_eq!(
        volumes.get(VID).await.unwrap().zone.as_deref(),
        Some("a1b2")
    );
    assert_eq!(volumes.list().await.unwrap().len(), 1);
    let gone = volumes.delete(VID).await.unwrap();
    assert!(gone.state.is_deleted());
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["name"], "ws_data");
    assert!(body.get("snapshot_id").is_none(), "no nulls sent: {body}");
}

#[tokio::test]
async fn volumes_fork_and_restore_fields() {
    let fly = FlyMock::start().await;
    fly.on_times(
        "POST",
        &format!("/v1/apps/{APP}/volumes"),
        200,
        volume_json(VID),
        2,
    )
    .await;
    let volumes = fly.client().volumes(APP);
    volumes
        .create(&CreateVolumeRequest {
            name: "ws_data".into(),
            region: Some("fra".into()),
            source_volume_id: Some(VID.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    volumes
        .create(&CreateVolumeRequest {
            name: "ws_data".into(),
            snapshot_id: Some("vs_abc".into()),
            size_gb: Some(20),
            ..Default::default()
        })
        .await
        .unwrap();
    let sent = fly.finish().await;
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[0].body).unwrap(),
        json!({"name": "ws_data", "region": "fra", "source_volume_id": VID})
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[1].body).unwrap(),
        json!({"name": "ws_data", "size_gb": 20, "snapshot_id": "vs_abc"})
    );
}

#[tokio::test]
async fn volumes_delete_while_bound_is_precondition_failed() {
    let fly = FlyMock::start().await;
    fly.on(
        "DELETE",
        &format!("/v1/apps/{APP}/volumes/{VID}"),
        412,
        json!({"error": format!("failed_precondition: volume is currently bound to machine: {MID}")}),
    )
    .await;
    let err = fly.client().volumes(APP).delete(VID).await.unwrap_err();
    assert!(err.is_precondition_failed());
    assert!(err.to_string().contains("bound to machine"));
    fly.finish().await;
}

#[tokio::test]
async fn volumes_extend_and_snapshots() {
    let fly = FlyMock::start().await;
    let base = format!("/v1/apps/{APP}/volumes/{VID}");
    let mut grown = volume_json(VID);
    grown["size_gb"] = json!(20);
    fly.mount(
        Mock::given(method("PUT"))
            .and(path(format!("{base}/extend")))
            .and(body_json(json!({"size_gb": 20})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"volume": grown, "needs_restart": true})),
            )
            .expect(1),
    )
    .await;
    common::check_fixture(
        "PUT",
        &format!("{base}/extend"),
        200,
        &json!({"volume": volume_json(VID), "needs_restart": true}),
    );
    fly.on(
        "GET",
        &format!("{base}/snapshots"),
        200,
        json!([{"id": "vs_1", "created_at": "2026-11-27T10:00:00Z", "digest": "d", "size": 1024,
                "volume_size": 10, "status": "created", "retention_days": 5}]),
    )
    .await;
    fly.on("POST", &format!("{base}/snapshots"), 200, Value::Null)
        .await;
    let volumes = fly.client().volumes(APP);
    let extended = volumes.extend(VID, 20).await.unwrap();
    assert!(extended.needs_restart);
    assert_eq!(extended.volume.size_gb, 20);
    let snapshots = volumes.list_snapshots(VID).await.unwrap();
    assert_eq!(snapshots[0].id, "vs_1");
    assert_eq!(snapshots[0].retention_days, Some(5));
    volumes.create_snapshot(VID).await.unwrap();
    assert!(matches!(
        volumes.extend(VID, 0).await,
        Err(Error::InvalidInput(_))
    ));
    fly.finish().await;
}
