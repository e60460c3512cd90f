-- shapes.sql: every table shape and name PostgreSQL allows.
--
-- Core PostgreSQL plus file_fdw (shipped with PostgreSQL's contrib), loads
-- into PostgreSQL 15 with psql -v ON_ERROR_STOP=1 -f shapes.sql. Data are
-- deterministic. awkward.sql holds the awkward types and objects; this file
-- holds the awkward shapes of tables and names:
--
--   public.nocols, public.nocols_full      no columns at all (rows still count)
--   public.gen_only                        every column generated
--   public.all_dropped                     every column dropped
--   public.gen_and_dropped                 generated columns beside dropped ones
--   public.widest                          1,600 columns (the maximum)
--   public.toasted                         only TOASTed columns, no key, FULL
--   public.typed                           CREATE TABLE ... OF a composite type
--   public.inh_a, inh_b, inh_child, inh_grandchild
--                                          inheritance: two parents, extra and
--                                          dropped columns, two levels
--   public.parted + parts                  partitions whose columns are in
--                                          another order, or dropped
--   names: 63 bytes, reserved words, a newline, quotes, %, Unicode, two
--          tables differing only by case, schema "select" with table "from"
--
-- What cannot move, for pgtide check: public.remote (a foreign table through
-- file_fdw) and public.ext_owned (a table that belongs to an extension).
-- Those two are created by the tests, not here, so that this file loads
-- anywhere; see test_shapes.py.
--
-- A table without a key has REPLICA IDENTITY FULL, so that its UPDATE and
-- DELETE can be streamed (pgtide check refuses a keyless table without it).

SET client_min_messages = warning;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

-- ---------------------------------------------------------------- no columns
CREATE TABLE public.nocols ();
ALTER TABLE public.nocols REPLICA IDENTITY FULL;
INSERT INTO public.nocols DEFAULT VALUES;
INSERT INTO public.nocols DEFAULT VALUES;
INSERT INTO public.nocols DEFAULT VALUES;
-- enough rows (about 20 blocks) to be cut into chunks of 64kB
INSERT INTO public.nocols SELECT FROM generate_series(1, 6000);

CREATE TABLE public.nocols_full ();
ALTER TABLE public.nocols_full REPLICA IDENTITY FULL;
INSERT INTO public.nocols_full SELECT FROM generate_series(1, 4);

CREATE TABLE public.gen_only (
    a int GENERATED ALWAYS AS (1) STORED,
    b text GENERATED ALWAYS AS ('fixed') STORED
);
ALTER TABLE public.gen_only REPLICA IDENTITY FULL;
INSERT INTO public.gen_only DEFAULT VALUES;
INSERT INTO public.gen_only DEFAULT VALUES;

CREATE TABLE public.all_dropped (a int, b text);
INSERT INTO public.all_dropped VALUES (1, 'x'), (2, 'y');
ALTER TABLE public.all_dropped DROP COLUMN a, DROP COLUMN b;
ALTER TABLE public.all_dropped REPLICA IDENTITY FULL;

CREATE TABLE public.gen_and_dropped (gone int, g int GENERATED ALWAYS AS (7) STORED);
INSERT INTO public.gen_and_dropped (gone) VALUES (1), (2);
ALTER TABLE public.gen_and_dropped DROP COLUMN gone;
ALTER TABLE public.gen_and_dropped REPLICA IDENTITY FULL;

-- ------------------------------------------------------------ 1,600 columns
DO $$
BEGIN
    EXECUTE 'CREATE TABLE public.widest (id int PRIMARY KEY, '
        || (SELECT string_agg(format('c%s int', g), ', ' ORDER BY g)
              FROM generate_series(2, 1600) g) || ')';
    EXECUTE 'INSERT INTO public.widest SELECT r, '
        || (SELECT string_agg(format('r * %s', g), ', ' ORDER BY g)
              FROM generate_series(2, 1600) g)
        || ' FROM generate_series(1, 3) r';
END
$$;

-- --------------------------------------- only TOASTed columns, without a key
CREATE TABLE public.toasted (a text, b bytea, c jsonb);
ALTER TABLE public.toasted ALTER COLUMN a SET STORAGE EXTERNAL;
ALTER TABLE public.toasted REPLICA IDENTITY FULL;
INSERT INTO public.toasted
SELECT repeat(md5(g::text), 20000),
       decode(repeat(md5((g + 100)::text), 30000), 'hex'),
       jsonb_build_object('k', g, 'v', repeat(md5((g + 200)::text), 10000))
  FROM generate_series(1, 3) g;

-- -------------------------------------------------------------- typed table
CREATE TYPE public.point_pair AS (id int, x float8, label text);
CREATE TABLE public.typed OF public.point_pair (PRIMARY KEY (id));
INSERT INTO public.typed VALUES (1, 0.5, 'one'), (2, -1e300, 'two');

-- -------------------------------------------------------------- inheritance
CREATE TABLE public.inh_a (id int PRIMARY KEY, a text);
CREATE TABLE public.inh_b (id int, b int, junk text);
ALTER TABLE public.inh_b DROP COLUMN junk;
ALTER TABLE public.inh_b REPLICA IDENTITY FULL;
CREATE TABLE public.inh_child (extra text, doomed int) INHERITS (public.inh_a, public.inh_b);
ALTER TABLE public.inh_child ADD PRIMARY KEY (id);
ALTER TABLE public.inh_child DROP COLUMN doomed;
CREATE TABLE public.inh_grandchild (deeper int) INHERITS (public.inh_child);
ALTER TABLE public.inh_grandchild REPLICA IDENTITY FULL;
INSERT INTO public.inh_a VALUES (1, 'parent a');
INSERT INTO public.inh_b VALUES (2, 20);
INSERT INTO public.inh_child VALUES (3, 'child', 30, 'extra');
INSERT INTO public.inh_grandchild VALUES (4, 'grand', 40, 'more', 400);
-- the same key and the same row at several levels: a change to one level
-- must leave the others alone
INSERT INTO public.inh_child VALUES (1, 'child one', 10, 'x');
INSERT INTO public.inh_grandchild VALUES (2, 'grand two', 20, 'y', 0);

-- ------------------- partitions with their own column order, dropped columns
CREATE TABLE public.parted (id int, region text, v text, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE public.parted_eu PARTITION OF public.parted FOR VALUES IN ('eu');
CREATE TABLE public.parted_us (v text, region text NOT NULL, id int NOT NULL);
ALTER TABLE public.parted ATTACH PARTITION public.parted_us FOR VALUES IN ('us');
CREATE TABLE public.parted_asia (junk int, id int NOT NULL, v text, region text NOT NULL);
ALTER TABLE public.parted_asia DROP COLUMN junk;
ALTER TABLE public.parted ATTACH PARTITION public.parted_asia FOR VALUES IN ('asia');
INSERT INTO public.parted
SELECT g, (ARRAY['eu', 'us', 'asia'])[g % 3 + 1], 'v' || g FROM generate_series(1, 30) g;

-- -------------------------------------------------------------------- names
CREATE TABLE public.n23456789012345678901234567890123456789012345678901234567890123 (
    c23456789012345678901234567890123456789012345678901234567890123 int PRIMARY KEY);
INSERT INTO public.n23456789012345678901234567890123456789012345678901234567890123 VALUES (1);
-- 63 bytes of two-byte characters and a trailing one-byte one
CREATE TABLE public."éééééééééééééééééééééééééééééééx" (id int PRIMARY KEY, "é" text);
INSERT INTO public."éééééééééééééééééééééééééééééééx" VALUES (1, 'é');
CREATE TABLE public."order" ("user" int PRIMARY KEY, "group" text, "limit" int);
INSERT INTO public."order" VALUES (1, 'g', 10);
CREATE TABLE public."new
line" ("a
b" int PRIMARY KEY, "tab	here" text);
INSERT INTO public."new
line" VALUES (1, 'x');
CREATE TABLE public."it's ""quoted""" ("a ""q"" col" int PRIMARY KEY, "it's" text);
INSERT INTO public."it's ""quoted""" VALUES (1, 'q');
CREATE TABLE public."100% %s %d %n" ("%s" int PRIMARY KEY, "%" text);
INSERT INTO public."100% %s %d %n" VALUES (1, '%s');
CREATE TABLE public."日本語テーブル" ("列" int PRIMARY KEY, "ß✓" text);
INSERT INTO public."日本語テーブル" VALUES (1, 'ü');
CREATE TABLE public."Mixed" (id int PRIMARY KEY, v text);
CREATE TABLE public.mixed (id int PRIMARY KEY, v text);
INSERT INTO public."Mixed" VALUES (1, 'upper');
INSERT INTO public.mixed VALUES (1, 'lower'), (2, 'lower');
CREATE SCHEMA "select";
CREATE TABLE "select"."from" ("where" int PRIMARY KEY, "table" text);
INSERT INTO "select"."from" VALUES (1, 'keywords');
CREATE TABLE "select"."FROM" ("where" int PRIMARY KEY);
INSERT INTO "select"."FROM" VALUES (2);

ANALYZE;
