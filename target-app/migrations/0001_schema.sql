-- The incident's tables. `user_coupons` deliberately has no (user_id, coupon_id) index here:
-- the incident lacked it; the app adds it at start-up when `--coupon-index` is on.
CREATE TABLE IF NOT EXISTS products (
    id         BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name       VARCHAR(100)    NOT NULL,
    price      BIGINT          NOT NULL
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS inventories (
    product_id     BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    stock_quantity BIGINT          NOT NULL,
    CONSTRAINT stock_never_negative CHECK (stock_quantity >= 0)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS orders (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT UNSIGNED NOT NULL,
    product_id   BIGINT UNSIGNED NOT NULL,
    quantity     INT UNSIGNED    NOT NULL,
    total_amount BIGINT          NOT NULL,
    created_at   TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS coupons (
    id             BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    total_quantity BIGINT          NOT NULL,
    issued         BIGINT          NOT NULL DEFAULT 0,
    CONSTRAINT issued_within_quantity CHECK (issued >= 0 AND issued <= total_quantity)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS user_coupons (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT UNSIGNED NOT NULL,
    coupon_id  BIGINT UNSIGNED NOT NULL,
    created_at TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB;

-- One row per accepted coupon request, written by the consumer in the same transaction as the
-- coupon itself: every 202 ends here as `issued` or `rejected` with a reason.
CREATE TABLE IF NOT EXISTS coupon_requests (
    request_id  CHAR(36)        NOT NULL PRIMARY KEY,
    user_id     BIGINT UNSIGNED NOT NULL,
    coupon_id   BIGINT UNSIGNED NOT NULL,
    status      VARCHAR(16)     NOT NULL,
    reason      VARCHAR(32)     NULL,
    accepted_at TIMESTAMP(3)    NOT NULL,
    decided_at  TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB;
