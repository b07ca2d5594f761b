-- Views over the orders stream. Each materialized view is computed by the
-- batch layer from a snapshot of the log and by the speed layer over the
-- newer commits; serving merges the two, batch overriding speed per key.

-- Revenue per hour and country. The key is given explicitly here; it would
-- default to the GROUP BY outputs (hour, country) anyway.
CREATE MATERIALIZED VIEW revenue_hourly WITH (key = 'hour,country') AS
SELECT date_bin(INTERVAL '1 hour', ts, TIMESTAMP '1970-01-01T00:00:00Z') AS hour,
       country,
       count(*) AS orders,
       sum(amount) AS revenue
FROM orders
GROUP BY 1, 2;

-- Units and revenue per day and product (key: day, product, from GROUP BY).
CREATE MATERIALIZED VIEW product_daily AS
SELECT date_trunc('day', ts) AS day,
       product,
       sum(quantity) AS units,
       sum(amount) AS revenue,
       min(amount) AS smallest,
       max(amount) AS largest
FROM orders
GROUP BY date_trunc('day', ts), product;

-- Every order of 1,000 or more: a keyless view (each event is in exactly
-- one side, batch or speed).
CREATE MATERIALIZED VIEW large_orders AS
SELECT order_id, ts, country, product, amount
FROM orders
WHERE amount >= 1000;

-- A plain view, computed at query time over the served views.
CREATE VIEW revenue_by_country AS
SELECT country, sum(orders) AS orders, sum(revenue) AS revenue
FROM revenue_hourly
GROUP BY country;
