-- A small warehouse for the Meltano end-to-end run: users, accounts and product events.
DROP SCHEMA IF EXISTS analytics CASCADE;
CREATE SCHEMA analytics;

CREATE TABLE analytics.accounts (
    id text PRIMARY KEY,
    name text NOT NULL,
    tier text,
    arr numeric(12, 2)
);
INSERT INTO analytics.accounts
SELECT 'acct-' || n, 'Account ' || n, (ARRAY['free', 'team', 'enterprise'])[1 + n % 3], n * 1000.50
FROM generate_series(1, 8) AS n;

CREATE TABLE analytics.users (
    id text PRIMARY KEY,
    email text NOT NULL,
    account_id text REFERENCES analytics.accounts (id),
    plan text,
    seats integer,
    signed_up_at timestamptz
);
INSERT INTO analytics.users
SELECT 'user-' || n, 'user' || n || '@example.com', 'acct-' || (1 + n % 8),
       (ARRAY['free', 'team', 'enterprise'])[1 + n % 3], n % 25,
       now() - (n || ' days')::interval
FROM generate_series(1, 40) AS n;

CREATE TABLE analytics.product_events (
    event_id bigint PRIMARY KEY,
    user_id text,
    account_id text,
    event text NOT NULL,
    occurred_at timestamptz NOT NULL,
    page_url text
);
INSERT INTO analytics.product_events
SELECT n, 'user-' || (1 + n % 40), 'acct-' || (1 + n % 8),
       (ARRAY['Signed Up', 'Report Exported', 'Dashboard Viewed', 'Invite Sent'])[1 + n % 4],
       now() - (n || ' minutes')::interval,
       'https://app.example.com/p/' || (n % 10)
FROM generate_series(1, 300) AS n;
-- one event without a visitor: rejected with its reason, the run goes on
UPDATE analytics.product_events SET user_id = NULL WHERE event_id = 150;
