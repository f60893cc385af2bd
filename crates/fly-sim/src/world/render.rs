//! JSON shapes of Fly's responses (field names from `machines-openapi.json`).

use serde_json::{Value, json};

use super::{App, Event, Ip, Machine, Snapshot, Volume, World};
use crate::clock::rfc3339;

pub fn event(e: &Event) -> Value {
    let mut v = json!({
        "id": e.id,
        "type": e.kind,
        "status": e.status,
        "source": e.source,
        "timestamp": e.timestamp,
    });
    if let (Some(req), Some(obj)) = (&e.request, v.as_object_mut()) {
        obj.insert("request".into(), req.clone());
    }
    v
}

fn image_ref(image: &str) -> Value {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (image, None),
    };
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') => {
            (first, rest.to_string())
        }
        _ => ("docker-hub-mirror.fly.io", name.to_string()),
    };
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (rest.clone(), "latest".to_string()),
    };
    let repository = if repository.contains('/') {
        repository
    } else {
        format!("library/{repository}")
    };
    let digest = digest.unwrap_or_else(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in image.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!(
            "sha256:{h:016x}{:016x}{h:016x}{:016x}",
            h.rotate_left(13),
            h.rotate_left(29)
        )
    });
    json!({"registry": registry, "repository": repository, "tag": tag, "digest": digest, "labels": {}})
}

pub fn machine(m: &Machine, include_lease: bool) -> Value {
    let image = m
        .config
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut v = json!({
        "id": m.id,
        "name": m.name,
        "state": m.state,
        "region": m.region,
        "instance_id": m.version,
        "version": m.version,
        "private_ip": m.private_ip,
        "config": m.config,
        "image_ref": image_ref(image),
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "events": m.events.iter().rev().map(event).collect::<Vec<_>>(),
        "checks": [],
        "host_status": "ok",
    });
    if let Some(obj) = v.as_object_mut() {
        if m.cordoned {
            obj.insert("cordoned".into(), json!(true));
        }
        if include_lease && let Some(l) = &m.lease {
            obj.insert(
                "lease".into(),
                json!({"owner": l.owner, "expires_at": l.expires_at, "description": l.description}),
            );
        }
    }
    v
}

pub fn volume(v: &Volume) -> Value {
    let bytes_total = v.size_gb * 1024 * 1024 * 1024;
    let used: i64 = v.files.values().map(|f| f.len() as i64).sum::<i64>() + 64 * 1024 * 1024;
    let block = 4096;
    let blocks = bytes_total / block;
    let free = ((bytes_total - used).max(0)) / block;
    let mut out = json!({
        "id": v.id,
        "name": v.name,
        "state": v.state,
        "size_gb": v.size_gb,
        "region": v.region,
        "zone": v.zone,
        "encrypted": v.encrypted,
        "created_at": rfc3339(v.created_at),
        "fstype": "ext4",
        "block_size": block,
        "blocks": blocks,
        "blocks_free": free,
        "blocks_avail": free,
        "bytes_total": bytes_total,
        "bytes_used": used.min(bytes_total),
        "snapshot_retention": v.snapshot_retention,
        "auto_backup_enabled": v.auto_backup_enabled,
        "host_status": "ok",
        "type": "local",
    });
    if let (Some(holder), Some(obj)) = (&v.attached_machine_id, out.as_object_mut()) {
        obj.insert("attached_machine_id".into(), json!(holder));
        obj.insert("attached_alloc_id".into(), json!(holder));
    }
    out
}

pub fn snapshot(s: &Snapshot, retention: i64) -> Value {
    json!({
        "id": s.id,
        "created_at": rfc3339(s.created_at),
        "digest": s.digest,
        "size": s.size,
        "volume_size": s.volume_size * 1024 * 1024 * 1024,
        "status": "created",
        "retention_days": retention,
    })
}

pub fn app(a: &App, org_name: &str) -> Value {
    let machines = a
        .machines
        .values()
        .filter(|m| m.state != "destroyed")
        .count();
    let status = if a.deleting {
        "suspended"
    } else if a.machines.values().any(|m| m.state == "started") {
        "deployed"
    } else {
        "pending"
    };
    json!({
        "id": a.id,
        "name": a.name,
        "status": status,
        "organization": {"name": org_name, "slug": a.org, "internal_numeric_id": 1},
        "network": a.network,
        "network_cidr": format!("fdaa:0:{:x}::/48", a.internal_numeric_id & 0xffff),
        "machine_count": machines,
        "volume_count": a.volumes.values().filter(|v| v.state != "destroyed").count(),
        "internal_numeric_id": a.internal_numeric_id,
    })
}

pub fn ip(ip: &Ip) -> Value {
    json!({
        "id": ip.id,
        "address": ip.address,
        "type": ip.kind,
        "region": ip.region,
        "createdAt": rfc3339(ip.created_at),
        "serviceName": ip.service_name,
    })
}

pub fn dump(w: &World) -> Value {
    let mut apps: Vec<&App> = w.apps.values().collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let apps: Vec<Value> = apps
        .into_iter()
        .map(|a| {
            let mut machines: Vec<&Machine> = a.machines.values().map(|m| &**m).collect();
            machines.sort_by_key(|m| (m.created_at, m.id.clone()));
            let mut volumes: Vec<&Volume> = a.volumes.values().map(|v| &**v).collect();
            volumes.sort_by_key(|v| (v.created_at, v.id.clone()));
            let mut summary = app(a, &w.org);
            if let Some(obj) = summary.as_object_mut() {
                obj.insert("deleting".into(), json!(a.deleting));
                obj.insert(
                    "machines".into(),
                    machines
                        .iter()
                        .map(|m| {
                            let mut v = machine(m, true);
                            if let Some(o) = v.as_object_mut() {
                                o.insert("timings".into(), json!(m.timings));
                                o.insert("mounted_volumes".into(), json!(m.mounted_volumes));
                                o.insert(
                                    "versions".into(),
                                    json!(m.versions.iter().map(|r| json!({"version": r.version, "replaced": r.replaced})).collect::<Vec<_>>()),
                                );
                                // Names only: secret values stay out of dumps.
                                o.insert(
                                    "runtime_env_keys".into(),
                                    json!(m.runtime_env.keys().collect::<Vec<_>>()),
                                );
                                o.insert("last_heartbeat".into(), json!(m.last_heartbeat));
                            }
                            v
                        })
                        .collect::<Vec<_>>()
                        .into(),
                );
                obj.insert(
                    "volumes".into(),
                    volumes
                        .iter()
                        .map(|v| {
                            let mut out = volume(v);
                            if let Some(o) = out.as_object_mut() {
                                o.insert("files".into(), json!(v.files.keys().collect::<Vec<_>>()));
                                o.insert(
                                    "snapshots".into(),
                                    json!(v.snapshots.iter().map(|s| s.id.clone()).collect::<Vec<_>>()),
                                );
                            }
                            out
                        })
                        .collect::<Vec<_>>()
                        .into(),
                );
                obj.insert("ips".into(), a.ips.iter().map(ip).collect::<Vec<_>>().into());
                obj.insert("shared_ip".into(), json!(a.shared_ip));
                obj.insert("secrets".into(), json!(a.secrets.keys().collect::<Vec<_>>()));
                obj.insert("secrets_version".into(), json!(a.secrets_version));
            }
            summary
        })
        .collect();
    json!({"org": w.org, "apps": apps})
}
