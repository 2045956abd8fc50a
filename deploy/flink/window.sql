-- One-minute tumbling windows of booking time per event (or train run): ARCHITECTURE.md section 5,
-- "Analytics". Confirmations add, cancellations subtract, each in the window of its own time. Flink emits
-- each window once, when the watermark (newest booking time - 5 s) passes its end: revision 1.

CREATE TEMPORARY VIEW bookings AS
SELECT
  `data`.`event_id` AS event_id,
  COALESCE(`data`.`kind`, 'event') AS kind,
  CASE WHEN `data`.`status` = 'cancelled' THEN -1 ELSE 1 END AS sign,
  `data`.`ticket_count` AS ticket_count,
  `data`.`amount_minor` AS amount_minor,
  `data`.`currency` AS currency,
  `booking_time`
FROM ticket_bookings
WHERE `type` IN ('booking.order-confirmed', 'booking.order-cancelled')
  AND `data`.`status` IN ('confirmed', 'cancelled')
  AND `data`.`event_id` IS NOT NULL AND `data`.`event_id` <> ''
  AND `data`.`order_id` IS NOT NULL
  AND `data`.`ticket_count` >= 0 AND `data`.`amount_minor` >= 0
  AND CHAR_LENGTH(`data`.`currency`) = 3
  AND COALESCE(`data`.`kind`, 'event') IN ('event', 'train');

INSERT INTO analytics_results
SELECT
  UUID() AS `id`,
  'analytics.window-result' AS `type`,
  'flink' AS `source`,
  DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss''Z''') AS `time`,
  event_id AS `key`,
  CAST(ROW(
    event_id,
    kind,
    DATE_FORMAT(window_start, 'yyyy-MM-dd''T''HH:mm:ss''Z'''),
    DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss''Z'''),
    total_tickets,
    orders,
    revenue_minor,
    currency,
    1
  ) AS ROW<
    `event_id` STRING, `kind` STRING, `window_start` STRING, `window_end` STRING, `total_tickets` BIGINT,
    `orders` BIGINT, `revenue_minor` BIGINT, `currency` STRING, `revision` INT
  >) AS `data`,
  CAST(NULL AS STRING) AS `traceparent`
FROM (
  SELECT
    event_id,
    kind,
    window_start,
    window_end,
    CAST(SUM(sign * ticket_count) AS BIGINT) AS total_tickets,
    CAST(SUM(sign) AS BIGINT) AS orders,
    CAST(SUM(sign * amount_minor) AS BIGINT) AS revenue_minor,
    MAX(currency) AS currency
  FROM TABLE(TUMBLE(TABLE bookings, DESCRIPTOR(booking_time), INTERVAL '1' MINUTE))
  GROUP BY event_id, kind, window_start, window_end
);
