//! Demo data for `make demo`: in every town, grids, a dozen premises with realistic names,
//! addresses and licence numbers, edge boxes and cameras, one or two teams with rosters, and users
//! of every role. Deterministic (seeded), written in one transaction, and only into an empty registry.

use super::cameras::{self, NewCamera};
use super::premises::{self, NewPremises};
use super::roster::EVERY_DAY;
use super::{teams, towns};
use crate::auth::{Role, password};
use crate::config::PasswordConfig;
use crate::error::Error;
use chrono::NaiveTime;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use uuid::Uuid;

/// Places (villages, roads) per town, for addresses and restaurant names.
const PLACES: &[(&str, &[&str])] = &[
    ("dayu", &["新桥大街", "滨河路", "黑山大街", "大峪南路"]),
    ("chengzi", &["城子大街", "向阳东路", "龙门新区"]),
    ("dongxinfang", &["东辛房大街", "石门营路", "圈门里"]),
    ("datai", &["大台村", "千军台村", "桃园村"]),
    ("wangping", &["王平村", "东王平村", "南涧村"]),
    ("yongding", &["永定路", "冯村", "石门营新区"]),
    ("longquan", &["龙泉务村", "琉璃渠村", "三家店村"]),
    ("tanzhesi", &["平原村", "南村", "鲁家滩村"]),
    ("junzhuang", &["军庄村", "孟悟村", "东山村"]),
    ("miaofengshan", &["陇驾庄村", "樱桃沟村", "涧沟村"]),
    ("yanchi", &["雁翅村", "田庄村", "付家台村"]),
    ("zhaitang", &["斋堂村", "爨底下村", "灵水村", "东斋堂村"]),
    ("qingshui", &["清水村", "燕家台村", "双塘涧村"]),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "高", "孙", "马", "谭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军", "杰", "秀英", "建国", "海燕",
];

/// A demo user: name, role, scope towns (None = district), team and display name.
type DemoUser = (String, Role, Option<Vec<String>>, Option<Uuid>, String);

/// What the generator made; passwords are shown once by the caller.
#[derive(Debug)]
pub enum Summary {
    /// The registry had premises already; nothing was written.
    Skipped,
    Created {
        premises: usize,
        cameras: usize,
        teams: usize,
        /// (user name, role) of each demo user.
        users: Vec<(String, Role)>,
        /// The one password of every demo user (demo only: never do this with real accounts).
        password: String,
    },
}

fn person(rng: &mut StdRng) -> String {
    format!(
        "{}{}",
        SURNAMES.choose(rng).expect("non-empty"),
        GIVEN.choose(rng).expect("non-empty")
    )
}

fn mobile(rng: &mut StdRng) -> String {
    format!(
        "1{}{:09}",
        [3, 5, 8].choose(rng).expect("non-empty"),
        rng.random_range(0..1_000_000_000u32)
    )
}

/// A food business licence number: JY, category (2 catering, 3 canteen), 110109 (Mentougou),
/// a 6-digit serial and a check digit.
fn food_licence(category: u8, serial: u32) -> String {
    format!("JY{category}110109{serial:06}{}", serial % 7)
}

/// Premises of one town, (name, kind); schools carry the `full` town name ("斋堂镇中心小学食堂").
fn premises_of(
    full: &str,
    short: &str,
    places: &[&str],
    rng: &mut StdRng,
) -> Vec<(String, &'static str)> {
    let place = |rng: &mut StdRng| {
        places
            .choose(rng)
            .expect("non-empty")
            .trim_end_matches('村')
            .to_owned()
    };
    let surname = SURNAMES.choose(rng).expect("non-empty");
    vec![
        (format!("{full}中心小学食堂"), "schoolCanteen"),
        (format!("{full}中学食堂"), "schoolCanteen"),
        (format!("{short}中心幼儿园食堂"), "schoolCanteen"),
        (format!("{}农家院", place(rng)), "restaurant"),
        (format!("{short}{surname}记饭庄"), "restaurant"),
        (format!("永定河鱼馆（{short}店）"), "restaurant"),
        (format!("{}老北京涮肉", place(rng)), "restaurant"),
        (format!("门头沟区{short}中央厨房"), "centralKitchen"),
        (format!("金象大药房（{short}店）"), "pharmacy"),
        (format!("同仁堂药店（{short}店）"), "pharmacy"),
        (format!("嘉事堂药店（{short}店）"), "pharmacy"),
        (format!("{short}养老照料中心食堂"), "other"),
    ]
}

/// Fills an empty registry. `towns` must have been imported.
pub async fn generate(pool: &PgPool, config: &PasswordConfig) -> Result<Summary, Error> {
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM premises")
        .fetch_one(pool)
        .await?;
    if existing > 0 {
        return Ok(Summary::Skipped);
    }
    let all_towns = towns::list(pool, None).await?;
    let mut rng = StdRng::seed_from_u64(0x006d_7467);
    let demo_password = password::random_password();
    let params = config.clone();
    let pw = demo_password.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&params, &pw))
        .await
        .map_err(|e| Error::internal("hashing the demo password", e))?;
    let mut tx = pool.begin().await?;
    let (mut n_premises, mut n_cameras, mut n_teams, mut serial) = (0, 0, 0, 1000u32);
    let mut users: Vec<DemoUser> = vec![
        (
            "zhang.wei".into(),
            Role::Supervisor,
            None,
            None,
            "张伟（值班主任）".into(),
        ),
        (
            "op.li".into(),
            Role::Operator,
            None,
            None,
            "李娜（指挥中心）".into(),
        ),
        (
            "op.chen".into(),
            Role::Operator,
            None,
            None,
            "陈静（指挥中心）".into(),
        ),
        (
            "drill.zhao".into(),
            Role::DrillCoordinator,
            None,
            None,
            "赵磊（演练）".into(),
        ),
        (
            "audit.sun".into(),
            Role::Auditor,
            None,
            None,
            "孙敏（审计）".into(),
        ),
    ];
    for town in &all_towns {
        let places = PLACES
            .iter()
            .find(|(id, _)| *id == town.id)
            .map_or(&["中心街"][..], |(_, p)| p);
        let short = town
            .name_zh
            .trim_end_matches("街道")
            .trim_end_matches('镇')
            .to_owned();
        let street = town.kind == "street";
        let grids: Vec<String> = (1..=3).map(|i| format!("{}-g{i}", town.id)).collect();
        for (i, grid) in grids.iter().enumerate() {
            let name = format!("{short}第{}网格", ["一", "二", "三"][i]);
            teams::insert_grid(
                &mut tx,
                grid,
                &town.id,
                &name,
                &person(&mut rng),
                &mobile(&mut rng),
            )
            .await?;
        }
        for (i, (name, kind)) in premises_of(
            if street { &short } else { &town.name_zh },
            &short,
            places,
            &mut rng,
        )
        .into_iter()
        .enumerate()
        {
            serial += rng.random_range(1..40);
            let licence_no = match kind {
                "pharmacy" => format!("京CB109{:04}", serial % 10_000),
                "schoolCanteen" | "other" => food_licence(3, serial),
                _ => food_licence(2, serial),
            };
            let grade = *["A", "A", "A", "B", "B", "B", "B", "C", "C", "D"]
                .choose(&mut rng)
                .expect("non-empty");
            let address = if street {
                format!(
                    "北京市门头沟区{}{}{}号",
                    town.name_zh,
                    places.choose(&mut rng).expect("non-empty"),
                    rng.random_range(1..200)
                )
            } else {
                format!(
                    "北京市门头沟区{}{}{}号",
                    town.name_zh,
                    places.choose(&mut rng).expect("non-empty"),
                    rng.random_range(1..120)
                )
            };
            let p = NewPremises {
                name,
                licence_no,
                kind: kind.into(),
                address,
                lat: town.lat.map(|v| v + rng.random_range(-0.012..0.012)),
                lon: town.lon.map(|v| v + rng.random_range(-0.012..0.012)),
                town_id: town.id.clone(),
                grid_id: Some(grids[i % grids.len()].clone()),
                risk_grade: grade.into(),
                person_in_charge: person(&mut rng),
                phone: mobile(&mut rng),
            };
            p.validate()
                .map_err(|e| Error::internal("demo premises", e.message))?;
            let stored = premises::insert(&mut tx, &p).await?;
            n_premises += 1;
            if kind == "pharmacy" {
                let id = format!("{}-p{:02}-c1", town.id, i + 1);
                let url = format!(
                    "rtsp://192.0.2.{}/Streaming/Channels/101",
                    (serial % 250) + 1
                );
                let sub = url.replace("101", "102");
                let cam = NewCamera {
                    id: &id,
                    premises_id: stored.id,
                    name: "营业厅",
                    edge_id: None,
                    main_stream: &url,
                    sub_stream: Some(&sub),
                    talk: false,
                };
                cameras::insert(&mut tx, &cam).await?;
                n_cameras += 1;
            } else {
                let edge = format!("{}-e{:02}", town.id, i + 1);
                cameras::insert_edge(&mut tx, &edge, stored.id, chrono::Duration::days(30)).await?;
                for (c, (room, talk)) in [("后厨操作间", true), ("备餐间", false)]
                    .into_iter()
                    .enumerate()
                {
                    let id = format!("{edge}-c{}", c + 1);
                    let cam = NewCamera {
                        id: &id,
                        premises_id: stored.id,
                        name: room,
                        edge_id: Some(&edge),
                        main_stream: "main",
                        sub_stream: Some("sub"),
                        talk,
                    };
                    cameras::insert(&mut tx, &cam).await?;
                    n_cameras += 1;
                }
            }
        }
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).expect("valid hour");
        let first = teams::insert(
            &mut tx,
            &town.id,
            &format!("{short}食药所应急一组"),
            &mobile(&mut rng),
        )
        .await?;
        n_teams += 1;
        if street || town.id == "yongding" || town.id == "longquan" {
            let second = teams::insert(
                &mut tx,
                &town.id,
                &format!("{short}食药所应急二组"),
                &mobile(&mut rng),
            )
            .await?;
            n_teams += 1;
            teams::add_shift(&mut tx, first, EVERY_DAY, t(8), t(20)).await?;
            teams::add_shift(&mut tx, second, EVERY_DAY, t(20), t(8)).await?;
        } else {
            teams::add_shift(&mut tx, first, EVERY_DAY, t(0), t(0)).await?;
        }
        let scope = Some(vec![town.id.clone()]);
        users.push((
            format!("officer.{}", town.id),
            Role::TownOfficer,
            scope.clone(),
            None,
            format!("{}（{short}食药所）", person(&mut rng)),
        ));
        users.push((
            format!("field.{}", town.id),
            Role::Field,
            scope,
            Some(first),
            format!("{}（{short}应急一组）", person(&mut rng)),
        ));
    }
    for (username, role, scope, team, display) in &users {
        sqlx::query(
            "INSERT INTO users (id, username, display_name, role, scope_towns, team_id, password_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(username)
        .bind(display)
        .bind(role.as_str())
        .bind(scope)
        .bind(team)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Summary::Created {
        premises: n_premises,
        cameras: n_cameras,
        teams: n_teams,
        users: users.into_iter().map(|(u, r, ..)| (u, r)).collect(),
        password: demo_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn food_licences_follow_the_jy_pattern_of_mentougou() {
        let l = food_licence(3, 1234);
        assert_eq!(l.len(), 16);
        assert!(l.starts_with("JY3110109001234"), "{l}");
    }

    #[test]
    fn every_town_of_the_district_has_places_for_addresses() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data-towns.tsv"
        ))
        .unwrap();
        for t in towns::parse_tsv("towns", &text).unwrap() {
            assert!(
                PLACES.iter().any(|(id, _)| *id == t.id),
                "no places for {}",
                t.id
            );
        }
    }

    #[test]
    fn each_town_gets_canteens_restaurants_a_kitchen_and_pharmacies() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = premises_of("斋堂镇", "斋堂", &["斋堂村"], &mut rng);
        assert_eq!(p[0].0, "斋堂镇中心小学食堂");
        for kind in ["schoolCanteen", "restaurant", "centralKitchen", "pharmacy"] {
            assert!(p.iter().any(|(_, k)| *k == kind), "{kind}");
        }
    }
}
