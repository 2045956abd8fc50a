-- The job's tables: bookings from Kafka in, window results to Kafka out, in boxoffice's envelope
-- ({id, type, source, time, key, data, traceparent}; docs/contracts.md). ${KAFKA_BOOTSTRAP} is replaced by
-- submit.sh. The differential test (tests/integration/test_flink_differential.py) runs these same
-- statements with only the WITH (...) clauses swapped for the filesystem connector.

CREATE TABLE ticket_bookings (
  `id` STRING,
  `type` STRING,
  `key` STRING,
  `data` ROW<
    `event_id` STRING,
    `kind` STRING,
    `order_id` STRING,
    `ticket_count` INT,
    `amount_minor` BIGINT,
    `currency` STRING,
    `status` STRING,
    `timestamp` TIMESTAMP_LTZ(3)
  >,
  -- A record without a time counts as the epoch: far too late for any window, so never counted.
  `booking_time` AS COALESCE(`data`.`timestamp`, TO_TIMESTAMP_LTZ(0, 3)),
  WATERMARK FOR `booking_time` AS `booking_time` - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'ticket-bookings',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}',
  'properties.group.id' = 'analytics-flink',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'format' = 'json',
  'json.timestamp-format.standard' = 'ISO-8601',
  'json.ignore-parse-errors' = 'true'
);

CREATE TABLE analytics_results (
  `id` STRING,
  `type` STRING,
  `source` STRING,
  `time` STRING,
  `key` STRING,
  `data` ROW<
    `event_id` STRING,
    `kind` STRING,
    `window_start` STRING,
    `window_end` STRING,
    `total_tickets` BIGINT,
    `orders` BIGINT,
    `revenue_minor` BIGINT,
    `currency` STRING,
    `revision` INT
  >,
  `traceparent` STRING
) WITH (
  'connector' = 'kafka',
  'topic' = 'analytics-results',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}',
  'key.format' = 'raw',
  'key.fields' = 'key',
  'value.format' = 'json',
  'value.fields-include' = 'ALL',
  'sink.delivery-guarantee' = 'at-least-once'
);
