//! `make bench`'s goose row: a standalone goose 0.19 load test (goose's own client, metrics and
//! launcher, as a goose user writes one) that GETs `/` in a loop. Goose reads its usual flags:
//! `goose_bench --host URL --users 50 --increase-rate 1000 --run-time 6s --quiet`.

use goose::prelude::*;

async fn get(user: &mut GooseUser) -> TransactionResult {
    let _ = user.get("/").await?;
    Ok(())
}

fn main() -> Result<(), GooseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        GooseAttack::initialize()?
            .register_scenario(scenario!("bench").register_transaction(transaction!(get)))
            .execute()
            .await?;
        Ok(())
    })
}
