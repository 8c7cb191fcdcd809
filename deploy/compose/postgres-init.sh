#!/usr/bin/env bash
# Runs once, when the postgres container initializes an empty data directory (mounted into
# /docker-entrypoint-initdb.d). Creates the role the Airlock agent logs in as, with a SCRAM
# password read from a secret file, and a small sample database it owns.
set -euo pipefail
db="${ORDERS_DB:-orders}"
role="${ORDERS_ROLE:-airlock_svc}"
password="$(tr -d '\n' < "${ORDERS_DB_PASSWORD_FILE:-/run/secrets/orders_db_password}")"

# The password goes to psql on standard input (never in argv, where `ps` would show it), as a
# psql variable that :'password' then quotes as an SQL literal.
escaped="${password//\\/\\\\}"
escaped="${escaped//\'/\'\'}"
{
  printf "\\set password '%s'\n" "$escaped"
  cat <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
SQL
} | psql -v ON_ERROR_STOP=1 -v role="$role" -v db="$db" \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}"

psql -v ON_ERROR_STOP=1 -v role="$role" --username "${POSTGRES_USER:-postgres}" --dbname "$db" <<'SQL'
SET ROLE :"role";
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL, card_number text, created_at timestamptz DEFAULT now());
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers (id), total numeric(10, 2) NOT NULL, status text NOT NULL DEFAULT 'new');
INSERT INTO customers (name, email, card_number)
  SELECT 'Customer ' || i, 'customer' || i || '@example.com', '4111 1111 1111 ' || lpad((1111 + i)::text, 4, '0')
  FROM generate_series(1, 100) AS i;
INSERT INTO orders (customer_id, total, status)
  SELECT 1 + (i % 100), round((random() * 500)::numeric, 2), (ARRAY['new', 'paid', 'shipped'])[1 + i % 3]
  FROM generate_series(1, 1000) AS i;
SQL
echo "postgres-init: role $role and database $db ready" >&2
