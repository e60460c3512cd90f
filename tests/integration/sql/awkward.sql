-- awkward.sql: a source database full of the cases that break migration tools.
--
-- Core PostgreSQL only (no extensions), loads into PostgreSQL 15 with
--   psql -v ON_ERROR_STOP=1 -f awkward.sql
-- Data are deterministic (no random(), no now()), so loading this file into two
-- databases gives identical content. Small tables (a few rows to a few thousand),
-- except public.big_values (5 x 3 MB bytea, a 2 MB text, a 1 MB jsonb).
--
-- Contents (schema.table):
--   public.all_types            every common built-in type, NULL row, extremes
--   public.big_values           multi-MB bytea/text/jsonb (TOAST, incompressible)
--   "My Schema"."Customers", "My Schema"."Order Items"   quoted mixed-case names
--   public.measurements         RANGE by date, yearly partitions + DEFAULT
--   public.regional_sales       LIST partitioned (incl. a NULL partition, DEFAULT)
--   public.events               HASH partitioned, 4 partitions; FK target
--   public.orders               two-level: RANGE by date, then HASH by customer
--   public.event_notes          FK into the partitioned parent public.events
--   public.employees            self-referencing FK
--   public.customers, public.customer_orders, public.customer_audit
--                               FKs, indexes (unique, partial, expression),
--                               CHECK, triggers (one writes an audit row), rule, view
--   public.identity_always, public.identity_by_default, public.line_totals
--                               identity columns and a STORED generated column
--   public.no_pk_log            no primary key, duplicate rows, default replica identity
--   public.ri_full              REPLICA IDENTITY FULL (no key, duplicates)
--   public.ri_index             REPLICA IDENTITY USING INDEX (unique non-PK index)
--   public.empty_table          no rows
--   public.wide_table           200 columns
--   public.serial_things        serial column (sequence advanced by inserts)
--   public.altered              a dropped column and a fast-default added column
--   sequences: standalone_seq (setval, is_called), unstarted_seq (is_called=false)

SET client_min_messages = warning;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- --------------------------------------------------------------------------
-- Types
-- --------------------------------------------------------------------------

CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy', 'très "content"', 'with space');
CREATE TYPE public.address AS (street text, number integer, tags text[]);
CREATE DOMAIN public.positive_int AS integer CHECK (VALUE > 0);
CREATE DOMAIN public.us_zip AS text CHECK (VALUE ~ '^[0-9]{5}$');
CREATE TYPE public.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);

-- --------------------------------------------------------------------------
-- All types
-- --------------------------------------------------------------------------

CREATE TABLE public.all_types (
    id              integer PRIMARY KEY,
    c_smallint      smallint,
    c_int           integer,
    c_bigint        bigint,
    c_numeric       numeric(40, 15),
    c_numeric_free  numeric,
    c_real          real,
    c_double        double precision,
    c_text          text,
    c_varchar       varchar(20),
    c_char          char(10),
    c_bytea         bytea,
    c_bool          boolean,
    c_date          date,
    c_time          time,
    c_timetz        timetz,
    c_timestamp     timestamp,
    c_timestamptz   timestamptz,
    c_interval      interval,
    c_uuid          uuid,
    c_inet          inet,
    c_cidr          cidr,
    c_macaddr       macaddr,
    c_macaddr8      macaddr8,
    c_json          json,
    c_jsonb         jsonb,
    c_int_arr       integer[],
    c_text_arr      text[],
    c_int_2d        integer[][],
    c_mood          public.mood,
    c_mood_arr      public.mood[],
    c_address       public.address,
    c_posint        public.positive_int,
    c_zip           public.us_zip,
    c_int4range     int4range,
    c_int8range     int8range,
    c_numrange      numrange,
    c_daterange     daterange,
    c_tstzrange     tstzrange,
    c_floatrange    public.floatrange,
    c_bit           bit(8),
    c_varbit        bit varying(64),
    c_money         money,
    c_tsvector      tsvector,
    c_tsquery       tsquery,
    c_xml           xml,
    c_point         point,
    c_oid           oid
);

-- row 1: every column NULL
INSERT INTO public.all_types (id) VALUES (1);

-- row 2: ordinary values
INSERT INTO public.all_types VALUES (
    2, 42, 4242, 424242424242,
    1234567890123456789012345.123456789012345,
    3.14159265358979323846264338327950288419716939937510582097494459,
    1.5, 2.718281828459045,
    'plain text', 'varchar', 'char', '\x0001ff'::bytea, true,
    '2024-02-29', '13:45:30.123456', '13:45:30.5+05:30',
    '2024-02-29 13:45:30.123456', '2024-02-29 13:45:30.123456+01',
    '1 year 2 mons 3 days 04:05:06.789',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
    '{"b": 1, "a": [1, 2, {"c": null}], "b": 2}',
    '{"b": 1, "a": [1, 2, {"c": null}], "nested": {"deeper": {"deepest": [true, false, 1.50]}}}',
    ARRAY[1, 2, NULL, 3],
    ARRAY['a', 'with "quote"', 'NULL', NULL, '', 'comma,here', E'back\\slash', '{brace}', ' spaces ', 'ünï'],
    ARRAY[[1, 2, 3], [4, NULL, 6]],
    'happy', ARRAY['sad', 'très "content"', 'with space']::public.mood[],
    ROW('1 Main St, "Apt 2"', 42, ARRAY['x', 'y,z', NULL])::public.address,
    5, '02134',
    '[1,10)', '[-9223372036854775808,9223372036854775807)', '(1.5,2.25]', '[2024-01-01,2024-12-31]',
    '[2020-01-01 00:00:00+00,infinity)', '[1.5,2.5]',
    B'10101010', B'1101',
    '1234.56', to_tsvector('simple', 'The quick brown fox jumps over the lazy dog'),
    to_tsquery('simple', 'quick & (fox | dog) & !cat'),
    '<a x="1">text &amp; more<b/></a>', '(1.5,-2.25)', 4294967295
);

-- row 3: extremes and special values
INSERT INTO public.all_types VALUES (
    3, -32768, -2147483648, -9223372036854775808,
    'NaN', 'Infinity',
    'NaN', 'Infinity',
    '', '', '', '\x'::bytea, false,
    'infinity', '00:00:00', '00:00:00+14',
    'infinity', 'infinity',
    '-178000000 years',
    '00000000-0000-0000-0000-000000000000',
    '::1', '2001:db8::/32', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff:ff:ff',
    '"\u0000 json keeps escapes \ud83d\ude00"', '[]',
    '{}', '{}', '{}',
    'sad', '{}',
    ROW(NULL, NULL, NULL)::public.address,
    2147483647, '00000',
    'empty', '(,)', '(,5]', '[2024-01-01,)', 'empty', '(,)',
    B'00000000', B'',
    '-92233720368547758.08', ''::tsvector, ''::tsquery,
    '', '(0,0)', 0
);

-- row 4: the other extremes
INSERT INTO public.all_types VALUES (
    4, 32767, 2147483647, 9223372036854775807,
    -999999999999999999999999.999999999999999, '-Infinity',
    '-Infinity', '-Infinity',
    E'tab\there\nnewline\r\ncrlf \\ backslash ''single'' "double" \\N \\. end', 'NULL', '\N',
    '\x00'::bytea, NULL,
    '-infinity', '24:00:00', '23:59:59.999999-12',
    '-infinity', '-infinity',
    '-1 days +02:03:04.5',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '255.255.255.255', '0.0.0.0/0', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00',
    'null', 'null',
    '[0:2]={7,8,9}', ARRAY[NULL, NULL]::text[], ARRAY[[NULL, NULL], [NULL, NULL]]::integer[],
    'with space', ARRAY[NULL, 'ok']::public.mood[],
    ROW('', 0, '{}')::public.address,
    1, '99999',
    '[-2147483648,2147483647)', 'empty', '(-1e-20,1e20)', '[-infinity,infinity]',
    '[-infinity,2024-01-01 00:00:00+00)', '[-Infinity,Infinity]',
    B'11111111', B'1010101010101010101010101010101010101010101010101010101010101010',
    '92233720368547758.07', 'a:1A fat:2B,4C cat:5D ''quoted word'':3', 'fat:ab & cat',
    '<doc lang="fr">été 😀 &lt;&gt;</doc>', '(-1e+300,1e-300)', 1
);

-- row 5: numbers at the edges of float and numeric precision, unicode
INSERT INTO public.all_types (id, c_numeric, c_numeric_free, c_real, c_double, c_text,
                              c_varchar, c_char, c_json, c_jsonb, c_interval, c_time,
                              c_timestamp, c_timestamptz, c_date, c_money)
VALUES (5, 0.000000000000001,
        ('1' || repeat('0', 130) || '.' || repeat('9', 100))::numeric,
        '-0', '-0',
        'unicode: Ελληνικά, русский, 中文, 日本語, עברית, العربية, emoji 😀👍🏽, combining é',
        'ǅ ß ẞ İ ı', 'é',
        '{"ключ": "значение", "emoji": "😀", "esc": "\u00e9\n\t\"", "num": 1.000, "big": 123456789012345678901234567890}',
        '{"ключ": "значение", "emoji": "😀", "esc": "\u00e9\n\t\"", "num": 1.000, "big": 123456789012345678901234567890, "z": {}, "a": []}',
        '0', '23:59:59.999999',
        '294276-12-31 23:59:59.999999', '4713-01-01 00:00:00+00 BC', '5874897-12-31',
        '0');

INSERT INTO public.all_types (id, c_real, c_double, c_numeric_free)
VALUES (6, 3.4028235e+38, 1.7976931348623157e+308, 1e-100),
       (7, 1.4e-45, 5e-324, -1e-100),
       (8, 0.1, 0.1, 0.1),
       (9, 1.17549435e-38, 2.2250738585072014e-308, 'NaN');

-- rows 100..1099: ordinary generated values
INSERT INTO public.all_types
SELECT g,
       (g % 32767)::smallint,
       g * 1000,
       g::bigint * 1000000007,
       g * 1.000000000000001,
       g / 7.0,
       g / 3.0,
       g / 7.0,
       'row ' || g || repeat(' é', g % 5),
       left('v' || g, 20),
       'c' || (g % 100),
       decode(md5(g::text), 'hex'),
       g % 2 = 0,
       DATE '2000-01-01' + g,
       TIME '00:00' + g * INTERVAL '1 minute',
       (TIME '00:00' + g * INTERVAL '1 second')::timetz,
       TIMESTAMP '2020-01-01' + g * INTERVAL '37 minutes',
       TIMESTAMPTZ '2020-01-01 00:00:00+00' + g * INTERVAL '1 hour 1 second',
       g * INTERVAL '1 day 1 millisecond',
       md5(g::text)::uuid,
       ('10.' || (g / 256 % 256) || '.' || (g % 256) || '.1')::inet,
       ('10.' || (g % 256) || '.0.0/16')::cidr,
       ('08:00:2b:00:' || lpad(to_hex(g / 256 % 256), 2, '0') || ':' || lpad(to_hex(g % 256), 2, '0'))::macaddr,
       NULL,
       json_build_object('g', g, 'name', 'n' || g),
       jsonb_build_object('g', g, 'arr', jsonb_build_array(g, g + 1), 'flag', g % 3 = 0),
       ARRAY[g, g + 1, g + 2],
       ARRAY['t' || g, NULL, ''],
       ARRAY[[g, g], [g, g]],
       (ARRAY['sad', 'ok', 'happy']::public.mood[])[1 + g % 3],
       ARRAY[(ARRAY['sad', 'ok', 'happy']::public.mood[])[1 + g % 3]],
       ROW('street ' || g, g, ARRAY['t' || g])::public.address,
       g,
       lpad((g % 100000)::text, 5, '0'),
       int4range(g, g + 10),
       int8range(g, NULL),
       numrange(g / 10.0, g / 5.0, '[]'),
       daterange(DATE '2024-01-01' + g, DATE '2024-01-01' + 2 * g),
       tstzrange(TIMESTAMPTZ '2024-01-01 00:00+00' + g * INTERVAL '1 hour',
                 TIMESTAMPTZ '2024-01-01 00:00+00' + (g + 1) * INTERVAL '1 hour'),
       public.floatrange(g / 3.0, g / 2.0),
       (g % 256)::bit(8),
       (g::bit(32))::varbit,
       (g * 1.25)::numeric::money,
       to_tsvector('simple', 'word' || g || ' common'),
       to_tsquery('simple', 'word' || g),
       ('<row id="' || g || '"/>')::xml,
       point(g, -g),
       g
FROM generate_series(100, 1099) AS g;

-- --------------------------------------------------------------------------
-- Big values (TOAST; pseudo-random so pglz cannot shrink them)
-- --------------------------------------------------------------------------

CREATE TABLE public.big_values (
    id integer PRIMARY KEY,
    b  bytea,
    t  text,
    j  jsonb
);

-- 5 rows of 3 MB bytea: a distinct 64 kB pseudo-random block repeated 48 times
-- (pglz only looks 4 kB back, so the value stays ~3 MB on disk too).
INSERT INTO public.big_values (id, b)
SELECT r,
       decode(repeat((SELECT string_agg(md5(r || ':' || g), '' ORDER BY g)
                      FROM generate_series(1, 4096) AS g), 48), 'hex')
FROM generate_series(1, 5) AS r;

-- a 2 MB text with multibyte characters
INSERT INTO public.big_values (id, t)
SELECT 6, left(string_agg(md5(g::text) || ' é€😀 ', '' ORDER BY g), 2 * 1024 * 1024)
FROM generate_series(1, 60000) AS g;

-- a ~1 MB jsonb
INSERT INTO public.big_values (id, j)
SELECT 7, jsonb_build_object(
           'items', jsonb_agg(jsonb_build_object(
                        'i', g, 'name', 'item ' || g, 'hash', md5(g::text),
                        'nested', jsonb_build_object('x', g * 1.5, 'even', g % 2 = 0,
                                                     'tags', jsonb_build_array('a', g % 7)))
                    ORDER BY g),
           'unicode', 'üñî©ødé 😀')
FROM generate_series(1, 9000) AS g;

-- a small row next to the big ones
INSERT INTO public.big_values VALUES (8, '\xdeadbeef', 'small', '{"small": true}');

-- --------------------------------------------------------------------------
-- Quoted mixed-case names with spaces
-- --------------------------------------------------------------------------

CREATE SCHEMA "My Schema";

CREATE TABLE "My Schema"."Customers" (
    "Customer ID" integer PRIMARY KEY,
    "Full Name"   text NOT NULL,
    "e-mail"      text UNIQUE
);

CREATE TABLE "My Schema"."Order Items" (
    "Item ID"      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "Customer ID"  integer NOT NULL REFERENCES "My Schema"."Customers" ("Customer ID"),
    "Product Name" varchar(100) NOT NULL,
    "Unit Price"   numeric(12, 2) NOT NULL CHECK ("Unit Price" >= 0),
    "Qty ""boxed""" integer NOT NULL DEFAULT 1,
    "order"        integer,
    "UPPER"        text,
    "lower"        text
);
CREATE INDEX "Order Items by Product" ON "My Schema"."Order Items" ("Product Name", "Unit Price" DESC);
COMMENT ON TABLE "My Schema"."Order Items" IS 'quoted names, a reserved word ("order") and an embedded double quote';

INSERT INTO "My Schema"."Customers"
SELECT g, 'Customer ' || g || CASE WHEN g % 10 = 0 THEN ' O''Brien' ELSE '' END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END
FROM generate_series(1, 50) AS g;

INSERT INTO "My Schema"."Order Items" ("Customer ID", "Product Name", "Unit Price", "Qty ""boxed""", "order", "UPPER", "lower")
SELECT 1 + g % 50, 'Product "' || (g % 13) || '"', (g % 100) + 0.99, 1 + g % 4, g, 'U' || g, 'l' || g
FROM generate_series(1, 300) AS g;

-- --------------------------------------------------------------------------
-- Partitioned tables
-- --------------------------------------------------------------------------

-- RANGE by date with a DEFAULT partition
CREATE TABLE public.measurements (
    city_id  integer NOT NULL,
    logdate  date NOT NULL,
    peaktemp integer,
    unitsales integer,
    PRIMARY KEY (city_id, logdate)
) PARTITION BY RANGE (logdate);
CREATE TABLE public.measurements_2023 PARTITION OF public.measurements
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE public.measurements_2024 PARTITION OF public.measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.measurements_default PARTITION OF public.measurements DEFAULT;

INSERT INTO public.measurements
SELECT 1 + g % 10, DATE '2022-07-01' + g / 10, (g * 7) % 40 - 5, g % 100
FROM generate_series(0, 9999) AS g;   -- 2022-07-01 .. 2025-05-15: all three partitions

-- LIST partitioned, with a partition holding NULL and a DEFAULT
CREATE TABLE public.regional_sales (
    id     integer NOT NULL,
    region text,
    amount numeric(10, 2)
) PARTITION BY LIST (region);
CREATE TABLE public.regional_sales_eu PARTITION OF public.regional_sales FOR VALUES IN ('de', 'fr', 'it');
CREATE TABLE public.regional_sales_am PARTITION OF public.regional_sales FOR VALUES IN ('us', 'ca');
CREATE TABLE public.regional_sales_null PARTITION OF public.regional_sales FOR VALUES IN (NULL);
CREATE TABLE public.regional_sales_other PARTITION OF public.regional_sales DEFAULT;
CREATE INDEX ON public.regional_sales (id);

INSERT INTO public.regional_sales
SELECT g, (ARRAY['de', 'fr', 'it', 'us', 'ca', NULL, 'jp', 'br'])[1 + g % 8], g * 0.5
FROM generate_series(1, 2000) AS g;

-- HASH partitioned, 4 partitions; referenced by a foreign key
CREATE TABLE public.events (
    id      bigint NOT NULL PRIMARY KEY,
    kind    text NOT NULL,
    payload jsonb
) PARTITION BY HASH (id);
CREATE TABLE public.events_p0 PARTITION OF public.events FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE public.events_p1 PARTITION OF public.events FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE public.events_p2 PARTITION OF public.events FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE public.events_p3 PARTITION OF public.events FOR VALUES WITH (MODULUS 4, REMAINDER 3);

INSERT INTO public.events
SELECT g, (ARRAY['click', 'view', 'buy'])[1 + g % 3], jsonb_build_object('n', g)
FROM generate_series(1, 3000) AS g;

-- foreign key into the partitioned parent
CREATE TABLE public.event_notes (
    id       integer PRIMARY KEY,
    event_id bigint NOT NULL REFERENCES public.events (id) ON DELETE CASCADE,
    note     text
);
INSERT INTO public.event_notes SELECT g, g * 3, 'note ' || g FROM generate_series(1, 500) AS g;

-- two levels: RANGE by order date, then HASH by customer
CREATE TABLE public.orders (
    order_id    bigint NOT NULL,
    customer_id integer NOT NULL,
    order_date  date NOT NULL,
    total       numeric(12, 2),
    PRIMARY KEY (order_id, order_date, customer_id)
) PARTITION BY RANGE (order_date);
CREATE TABLE public.orders_2023 PARTITION OF public.orders
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01') PARTITION BY HASH (customer_id);
CREATE TABLE public.orders_2023_h0 PARTITION OF public.orders_2023 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.orders_2023_h1 PARTITION OF public.orders_2023 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE public.orders_2024 PARTITION OF public.orders
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY HASH (customer_id);
CREATE TABLE public.orders_2024_h0 PARTITION OF public.orders_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.orders_2024_h1 PARTITION OF public.orders_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);

INSERT INTO public.orders
SELECT g, 1 + g % 97, DATE '2023-01-01' + g % 731, (g % 1000) * 1.01
FROM generate_series(1, 4000) AS g;

-- --------------------------------------------------------------------------
-- Keys, constraints, indexes, triggers, rules
-- --------------------------------------------------------------------------

-- self-referencing foreign key
CREATE TABLE public.employees (
    id         integer PRIMARY KEY,
    name       text NOT NULL,
    manager_id integer REFERENCES public.employees (id),
    salary     numeric(10, 2) CHECK (salary > 0)
);
INSERT INTO public.employees VALUES (1, 'CEO', NULL, 1000000);
INSERT INTO public.employees
SELECT g, 'employee ' || g, g / 2, 1000 + g
FROM generate_series(2, 200) AS g;

CREATE TABLE public.customers (
    id         integer PRIMARY KEY,
    email      text NOT NULL,
    name       text NOT NULL,
    search_key text,
    status     text NOT NULL DEFAULT 'open',
    zip        public.us_zip,
    CONSTRAINT customers_email_key UNIQUE (email),
    CONSTRAINT customers_status_check CHECK (status IN ('open', 'closed', 'vip'))
);
CREATE INDEX customers_name_idx ON public.customers (name);                       -- secondary
CREATE INDEX customers_open_idx ON public.customers (id) WHERE status = 'open';    -- partial
CREATE INDEX customers_lower_email_idx ON public.customers (lower(email));         -- expression

CREATE TABLE public.customer_audit (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL,
    action      text NOT NULL
);

-- BEFORE trigger: derives a column (idempotent)
CREATE FUNCTION public.customers_search_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_key := lower(NEW.name) || ' <' || lower(NEW.email) || '>';
    RETURN NEW;
END
$$;
CREATE TRIGGER customers_search_key BEFORE INSERT OR UPDATE ON public.customers
    FOR EACH ROW EXECUTE FUNCTION public.customers_search_key();

-- AFTER trigger writing another table: must not fire again during a load
CREATE FUNCTION public.customers_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.customer_audit (customer_id, action) VALUES (NEW.id, TG_OP);
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_audit AFTER INSERT ON public.customers
    FOR EACH ROW EXECUTE FUNCTION public.customers_audit();

INSERT INTO public.customers (id, email, name, status, zip)
SELECT g, 'User' || g || '@Example.com', 'Name ' || g,
       (ARRAY['open', 'closed', 'vip'])[1 + g % 3],
       CASE WHEN g % 4 = 0 THEN NULL ELSE lpad(g::text, 5, '0') END
FROM generate_series(1, 1000) AS g;

CREATE TABLE public.customer_orders (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES public.customers (id),
    placed      date NOT NULL,
    CONSTRAINT customer_orders_placed_check CHECK (placed > DATE '2000-01-01')
);
CREATE INDEX customer_orders_customer_idx ON public.customer_orders (customer_id);
INSERT INTO public.customer_orders
SELECT g, 1 + g % 1000, DATE '2024-01-01' + g % 366 FROM generate_series(1, 3000) AS g;

-- a rule: deleting an archived order does nothing
CREATE TABLE public.archived_orders (
    id       integer PRIMARY KEY,
    archived timestamptz NOT NULL
);
INSERT INTO public.archived_orders
SELECT g, TIMESTAMPTZ '2023-06-01 12:00+00' + g * INTERVAL '1 day' FROM generate_series(1, 100) AS g;
CREATE RULE archived_orders_no_delete AS ON DELETE TO public.archived_orders DO INSTEAD NOTHING;

CREATE VIEW public.vip_customers AS
    SELECT id, name, email FROM public.customers WHERE status = 'vip';

-- --------------------------------------------------------------------------
-- Identity and generated columns
-- --------------------------------------------------------------------------

CREATE TABLE public.identity_always (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label text
);
INSERT INTO public.identity_always (label) SELECT 'a' || g FROM generate_series(1, 100) AS g;

CREATE TABLE public.identity_by_default (
    id    integer GENERATED BY DEFAULT AS IDENTITY (START WITH 1000 INCREMENT BY 5) PRIMARY KEY,
    label text
);
INSERT INTO public.identity_by_default (label) SELECT 'd' || g FROM generate_series(1, 100) AS g;
INSERT INTO public.identity_by_default (id, label) VALUES (1, 'explicit id');

CREATE TABLE public.line_totals (
    id    integer PRIMARY KEY,
    qty   integer NOT NULL,
    price numeric(10, 2) NOT NULL,
    total numeric(12, 2) GENERATED ALWAYS AS (qty * price) STORED
);
INSERT INTO public.line_totals (id, qty, price)
SELECT g, g % 10, g * 0.25 FROM generate_series(1, 500) AS g;

-- --------------------------------------------------------------------------
-- Replica identity cases
-- --------------------------------------------------------------------------

-- no primary key, duplicate rows, default replica identity (= nothing)
CREATE TABLE public.no_pk_log (
    ts    timestamptz,
    level text,
    msg   text
);
INSERT INTO public.no_pk_log
SELECT TIMESTAMPTZ '2024-01-01 00:00+00' + (g % 10) * INTERVAL '1 minute',
       (ARRAY['info', 'warn'])[1 + g % 2], 'message ' || (g % 25)
FROM generate_series(1, 300) AS g;
INSERT INTO public.no_pk_log VALUES (NULL, NULL, NULL), (NULL, NULL, NULL), (NULL, '', '');

-- REPLICA IDENTITY FULL, no key, duplicates
CREATE TABLE public.ri_full (
    a integer,
    b text,
    c jsonb
);
ALTER TABLE public.ri_full REPLICA IDENTITY FULL;
INSERT INTO public.ri_full SELECT g % 20, 'b' || (g % 5), jsonb_build_object('k', g % 3)
FROM generate_series(1, 200) AS g;

-- REPLICA IDENTITY USING INDEX (a unique index on NOT NULL columns, not the PK)
CREATE TABLE public.ri_index (
    id   integer PRIMARY KEY,
    code text NOT NULL,
    rev  integer NOT NULL,
    body text
);
CREATE UNIQUE INDEX ri_index_code_rev ON public.ri_index (code, rev);
ALTER TABLE public.ri_index REPLICA IDENTITY USING INDEX ri_index_code_rev;
INSERT INTO public.ri_index SELECT g, 'code' || (g % 50), g / 50, 'body ' || g
FROM generate_series(1, 500) AS g;

-- --------------------------------------------------------------------------
-- Empty, wide, altered
-- --------------------------------------------------------------------------

CREATE TABLE public.empty_table (
    id    integer PRIMARY KEY,
    value text
);

-- 200 columns: id + c001..c199 cycling through int, text, numeric, bool, timestamptz
DO $$
DECLARE
    cols text := 'id integer PRIMARY KEY';
    vals text := 'g';
    types text[] := ARRAY['integer', 'text', 'numeric', 'boolean', 'timestamptz'];
    exprs text[] := ARRAY['g * %s', '''v'' || g || ''_%s''', 'g / %s.0', '(g + %s) %% 2 = 0',
                          'TIMESTAMPTZ ''2024-01-01 00:00+00'' + (g + %s) * INTERVAL ''1 minute'''];
    i integer;
    k integer;
BEGIN
    FOR i IN 1..199 LOOP
        k := 1 + i % 5;
        cols := cols || format(', c%s %s', lpad(i::text, 3, '0'), types[k]);
        vals := vals || ', ' || CASE WHEN (i * 7) % 31 = 0 THEN 'NULL'
                                     ELSE format(exprs[k], i) END;
    END LOOP;
    EXECUTE format('CREATE TABLE public.wide_table (%s)', cols);
    EXECUTE format('INSERT INTO public.wide_table SELECT %s FROM generate_series(1, 100) AS g', vals);
END
$$;

-- a dropped column (attisdropped) and a column added with a default (attmissingval)
CREATE TABLE public.altered (
    id      integer PRIMARY KEY,
    gone    text,
    keep    text
);
INSERT INTO public.altered SELECT g, 'gone ' || g, 'keep ' || g FROM generate_series(1, 100) AS g;
ALTER TABLE public.altered DROP COLUMN gone;
ALTER TABLE public.altered ADD COLUMN added integer NOT NULL DEFAULT 42;
ALTER TABLE public.altered ADD COLUMN added_text text DEFAULT 'fast default';
INSERT INTO public.altered (id, keep, added) VALUES (101, 'after alter', 7);

-- --------------------------------------------------------------------------
-- Sequences
-- --------------------------------------------------------------------------

CREATE TABLE public.serial_things (
    id   serial PRIMARY KEY,
    name text
);
INSERT INTO public.serial_things (name) SELECT 'thing ' || g FROM generate_series(1, 250) AS g;

CREATE SEQUENCE public.standalone_seq START WITH 100 INCREMENT BY 7;
SELECT setval('public.standalone_seq', 12345, true);

CREATE SEQUENCE public.unstarted_seq START WITH 1 MAXVALUE 1000000 CYCLE;
SELECT setval('public.unstarted_seq', 500, false);

ANALYZE;
