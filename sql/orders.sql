-- The sample stream: e-commerce orders (data/orders.parquet, data/orders-fresh.ndjson).
-- A stream is a table in the log; event_time names the TIMESTAMP column that
-- partitions its files by hour.
CREATE TABLE orders (
  order_id BIGINT NOT NULL,
  ts       TIMESTAMP NOT NULL,
  country  VARCHAR NOT NULL,
  product  VARCHAR NOT NULL,
  quantity INT NOT NULL,
  amount   DECIMAL(12,2) NOT NULL
) WITH (event_time = 'ts', partition = 'hour');
