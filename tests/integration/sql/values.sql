-- values.sql: the torture database for values. Every built-in type with the
-- values at its edges, and the user-defined kinds of type (enums, composites,
-- domains, ranges) in their odd shapes, so that a load and a stream can be
-- compared value by value.
--
-- Core PostgreSQL only (needs libxml for the xml column), PostgreSQL 15,
-- UTF-8 database; loads with psql -v ON_ERROR_STOP=1 -f values.sql. Data are
-- deterministic. Small: a few hundred rows in all, about 5 MB (most of it the
-- rows holding every Unicode code point).
--
-- Every table lives in schema vals and has an integer key `id` (except
-- vals.full_identity, REPLICA IDENTITY FULL without a key, and vals.odd_keys,
-- keyed on edge values). Under copy.format auto the tables of built-in types
-- only travel in binary; vals.user_types and vals.full_identity (user types),
-- vals.regs (reg* types) and vals.misc (tsquery) in text.
--
--   vals.numbers        integers, float4/float8 (NaN, infinities, -0,
--                       denormals), numeric (NaN, infinities, the largest
--                       precision and scale, negative scale)
--   vals.times          BC and far-future dates, infinities, 24:00, odd
--                       offsets, the largest and mixed-sign intervals
--   vals.bytes          one row per byte 0..255 (bytea, "char", text) and
--                       one holding them all; char(n) with trailing spaces,
--                       name, varchar
--   vals.code_points    every Unicode code point, in blocks of at most 65536
--   vals.misc           money, bit/varbit, network types, uuid, xml,
--                       json/jsonb, tsvector/tsquery, geometry, pg_lsn,
--                       snapshots, oid, boolean
--   vals.arrays         odd lower bounds, several dimensions, NULLs, arrays
--                       of edge values
--   vals.ranges         empty, unbounded and infinite ranges, multiranges
--   vals.regs           reg* types naming objects of this database (their
--                       OIDs differ on the target: only their names move)
--   vals.user_types     enums sorted apart from their creation order,
--                       nested composites with NULL fields, domains over
--                       arrays and composites, user ranges and multiranges
--   vals.full_identity  REPLICA IDENTITY FULL, no key: matched on whole rows,
--                       with rows equal by their types' equality (0 and -0,
--                       1.5 and 1.50, 1 day and 24 hours)
--   vals.odd_keys       a key made of a text, a numeric and a timestamptz
--   vals.toasted        a large incompressible value beside small columns

SET client_min_messages = warning;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 3;

CREATE SCHEMA vals;
CREATE SCHEMA "Odd ""Schema""";

-- --------------------------------------------------------------------------
-- Numbers
-- --------------------------------------------------------------------------

CREATE TABLE vals.numbers (
    id      integer PRIMARY KEY,
    i2      smallint,
    i4      integer,
    i8      bigint,
    f4      real,
    f8      double precision,
    n       numeric,
    n_big   numeric(1000, 500),
    n_neg   numeric(3, -2),
    n_tiny  numeric(2, 5)
);

INSERT INTO vals.numbers (id, i2, i4, i8, f4, f8, n) VALUES
    (1, NULL, NULL, NULL, NULL, NULL, NULL),
    (2, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', 'NaN'),
    (3, 32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity', 'Infinity'),
    (4, 0, 0, 0, '-Infinity', '-Infinity', '-Infinity'),
    (5, -1, -1, -1, '-0', '-0', '-0'),
    (6, 1, 1, 1, '0', '0', '0'),
    -- the smallest denormals, the largest denormals, the smallest normals
    (7, NULL, NULL, NULL, 1.4e-45, 5e-324, 1e-16383),
    (8, NULL, NULL, NULL, -1.4e-45, -5e-324, -1e-16383),
    (9, NULL, NULL, NULL, 1.1754942e-38, 2.2250738585072009e-308, 0.1),
    (10, NULL, NULL, NULL, 1.17549435e-38, 2.2250738585072014e-308, -0.1),
    -- the largest finite values
    (11, NULL, NULL, NULL, 3.4028235e+38, 1.7976931348623157e+308, 1e131071),
    (12, NULL, NULL, NULL, -3.4028235e+38, -1.7976931348623157e+308, -1e131071),
    -- values whose shortest text needs every digit
    (13, NULL, NULL, NULL, 0.1, 33.6666666666666643, 33.6666666666666643),
    (14, NULL, NULL, NULL, 16777217, 9007199254740993, 9007199254740993),
    (15, NULL, NULL, NULL, 1e23, 1e23, 1e23),
    (16, NULL, NULL, NULL, 1.0 / 3, 1.0 / 3, 1.0 / 3),
    (17, NULL, NULL, NULL, 2.7182817, 0.30000000000000004, 0.30000000000000004000);

-- numeric's largest precision (131072 digits before the point) and scale
-- (16383 after it), trailing zeros kept by the scale
UPDATE vals.numbers SET n = (repeat('9', 131072) || '.' || repeat('9', 16383))::numeric
WHERE id = 11;
UPDATE vals.numbers SET n = -(repeat('9', 131072) || '.' || repeat('9', 16383))::numeric
WHERE id = 12;
UPDATE vals.numbers SET n = ('0.' || repeat('0', 16382) || '1')::numeric WHERE id = 9;
UPDATE vals.numbers SET n = 1.50000000000000000000000000000000000000 WHERE id = 6;
UPDATE vals.numbers SET n_big = (repeat('9', 500) || '.' || repeat('9', 500))::numeric(1000, 500)
WHERE id = 11;
UPDATE vals.numbers SET n_big = -(repeat('9', 500) || '.' || repeat('9', 500))::numeric(1000, 500)
WHERE id = 12;
UPDATE vals.numbers SET n_big = ('0.' || repeat('0', 499) || '1')::numeric(1000, 500) WHERE id = 9;
UPDATE vals.numbers SET n_big = 'NaN' WHERE id = 2;
UPDATE vals.numbers SET n_neg = 99900, n_tiny = 0.00099 WHERE id = 3;
UPDATE vals.numbers SET n_neg = -99900, n_tiny = -0.00099 WHERE id = 4;
UPDATE vals.numbers SET n_neg = 12345.678, n_tiny = 0.000005 WHERE id = 5;

-- --------------------------------------------------------------------------
-- Dates and times
-- --------------------------------------------------------------------------

CREATE TABLE vals.times (
    id      integer PRIMARY KEY,
    d       date,
    t       time,
    t0      time(0),
    ttz     timetz,
    ts      timestamp,
    ts3     timestamp(3),
    tstz    timestamptz,
    i       interval,
    i_ym    interval YEAR TO MONTH,
    i_s2    interval SECOND(2)
);

INSERT INTO vals.times VALUES
    (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (2, '4713-01-01 BC', '00:00', '00:00', '00:00:00+15:59:59',
        '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00.001 BC',
        '4713-01-01 00:00:00+00 BC',
        '-178956970 years -8 mons -2147483648 days -2562047788:00:54.775807',
        '-178956970 years -8 mons', '-0.005 seconds'),
    (3, '5874897-12-31', '24:00:00', '24:00:00', '24:00:00-15:59:59',
        '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999',
        '294276-12-31 23:59:59.999999+00',
        '178956970 years 7 mons 2147483647 days 2562047788:00:54.775807',
        '178956970 years 7 mons', '59.995 seconds'),
    (4, 'infinity', '23:59:59.999999', '23:59:59', '23:59:59.999999+05:45',
        'infinity', 'infinity', 'infinity',
        '1 mon -1 days +00:00:00.000001', '-1 year +1 mon', '0'),
    (5, '-infinity', '12:34:56.5', '12:34:56.5', '12:00:00-09:30',
        '-infinity', '-infinity', '-infinity',
        '-1 mons +1 days -00:00:00.000001', '0', '-1 day +0.5 seconds'),
    (6, '0001-01-01 BC', '00:00:00.000001', '00:00:00.4', '00:00:00+00:00:01',
        '0001-12-31 23:59:59.999999 BC', '2000-02-29 12:00:00.0005',
        '1850-01-01 00:00:00 Pacific/Chatham',
        '-0.000001 seconds', '-1 mon', '1 day'),
    (7, '2000-02-29', '13:45:30.123456', '13:45:30.5', '13:45:30.123456+13:45',
        '1999-12-31 23:59:60', '1582-10-10 00:00:00',
        '2024-03-31 02:30:00 Europe/Berlin',
        '1000000 days 10000000 hours', '1000 years', '0.01 seconds'),
    (8, '1970-01-01', '12:00', '11:59:59.5', '00:00:00-00:00:01',
        '1970-01-01 00:00:00', '1970-01-01 00:00:00.0015',
        '1969-12-31 23:59:59.999999+00',
        '-1 years -2 mons +3 days -04:05:06.789', '1 year 11 mons', '-59.994 seconds');

-- --------------------------------------------------------------------------
-- Bytes and short texts
-- --------------------------------------------------------------------------

CREATE TABLE vals.bytes (
    id      integer PRIMARY KEY,
    b       bytea,
    ch      "char",
    t       text,
    c5      char(5),
    c1      character,
    vc      varchar(5),
    nm      name
);

-- row 1000 + n holds byte n: as bytea, as "char" (its octal escape, the form
-- "char" reads for bytes past 127), as text where it is a character
INSERT INTO vals.bytes (id, b, ch, t)
SELECT 1000 + n,
       decode(lpad(to_hex(n), 2, '0'), 'hex'),
       CASE WHEN n = 0 THEN ''::"char"
            WHEN n < 128 AND n <> 92 THEN chr(n)::"char"
            ELSE ('\' || (n / 64) || (n / 8 % 8) || (n % 8))::"char" END,
       CASE WHEN n BETWEEN 1 AND 127 THEN 'x' || chr(n) || 'y' || chr(n) END
FROM generate_series(0, 255) AS n;

INSERT INTO vals.bytes VALUES
    (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (2, (SELECT decode(string_agg(lpad(to_hex(n), 2, '0'), '' ORDER BY n), 'hex')
         FROM generate_series(0, 255) AS n),
        NULL,
        (SELECT string_agg(chr(n), '' ORDER BY n) FROM generate_series(1, 127) AS n),
        'a', 'é', 'ab  ', repeat('n', 63)),
    (3, '\x', '', '', '', ' ', '', ''),
    (4, '\x5c30', '\', E'\\N', ' a   ', '''', 'a b  ', 'name with spaces'),
    (5, '\x0d0a09', '"', E'\\.', 'ééééé', '€', '😀😀😀😀😀', repeat('é', 31) || 'x'),
    (6, decode(repeat('00ff', 1000), 'hex'), 'N', 'NULL', 'NULL', 'N', 'NULL',
        'null'),
    (7, '\x5c783030', ',', E'a\tb\nc\rd\\e', '{}', '{', '"x"', '"quoted"');

CREATE TABLE vals.code_points (
    id      integer PRIMARY KEY,
    first   integer,
    last    integer,
    t       text
);

-- every code point UTF-8 can hold but NUL and the surrogates
INSERT INTO vals.code_points
SELECT row_number() OVER (ORDER BY lo), lo, hi,
       (SELECT string_agg(chr(c), '' ORDER BY c) FROM generate_series(lo, hi) AS c)
FROM (VALUES (1, 55295), (57344, 65535)) AS bmp(lo, hi)
UNION ALL
SELECT 2 + p, p * 65536, p * 65536 + 65535,
       (SELECT string_agg(chr(c), '' ORDER BY c)
        FROM generate_series(p * 65536, p * 65536 + 65535) AS c)
FROM generate_series(1, 16) AS p;

-- --------------------------------------------------------------------------
-- Everything else built in
-- --------------------------------------------------------------------------

CREATE TABLE vals.misc (
    id      integer PRIMARY KEY,
    bo      boolean,
    m       money,
    bt      bit(4),
    vb      bit varying,
    ip      inet,
    cidr_   cidr,
    mac     macaddr,
    mac8    macaddr8,
    u       uuid,
    x       xml,
    j       json,
    jb      jsonb,
    tv      tsvector,
    tq      tsquery,
    pt      point,
    ln      line,
    ls      lseg,
    bx      box,
    pa      path,
    pg      polygon,
    ci      circle,
    lsn     pg_lsn,
    txs     txid_snapshot,
    snap    pg_snapshot,
    o       oid
);

INSERT INTO vals.misc (id) VALUES (1);

INSERT INTO vals.misc VALUES
    (2, true, '-92233720368547758.08', B'0000', B'',
        '::ffff:1.2.3.4', '::/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00',
        '00000000-0000-0000-0000-000000000000',
        'text only, no element',
        '{"a": 1, "a": 2, "a"  :  [ ] , "": "\u0000"}',
        '{"": "", "a": {"b": {"c": {"d": [[[[]]]]}}}}',
        $$'a' 'b':1A,16383D 'with space':2B 'back\\slash':3C 'quo''te':4$$,
        $$'a' <-> 'b' & !'c':* | 'd':AB <2> ( 'e' & 'f' )$$,
        '(-0,-0)', '{1,-1,0}', '[(0,0),(1e300,-1e300)]', '(1,1),(-1,-1)',
        '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(2,0))', '<(0,0),0>',
        '0/0', '10:20:10,14,15', '10:20:', 0),
    (3, false, '92233720368547758.07', B'1111', repeat('10', 500)::varbit,
        'fe80::1:2:3:4/64', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff',
        'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
        '<!DOCTYPE a><a x="1">été 😀 &lt;&amp;&gt; <![CDATA[ <raw> ]]><!-- c --><?pi x?></a>',
        '  [1e400, -0, 1.0e-400, "\ud83d\ude00", "\u00e9\n\t\"\\/", true, null]  ',
        '[1e400, -0, 1.0e-400, 0.000000000000000000001, "\ud83d\ude00", "\u00e9\n\t\"\\/"]',
        '', '',
        '(NaN,Infinity)', '{0,1,-1e300}', '[(-0,0),(0,-0)]', '(0,0),(0,0)',
        '[(1e-300,1e300)]', '((1,2))', '<(1e300,-1e300),1e300>',
        'FFFFFFFF/FFFFFFFF', '1:1:', '9223372036854775807:9223372036854775807:', 4294967295),
    (4, NULL, '0.01', B'1010', B'1',
        '10.1.2.3/8', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:ff:fe:01:02:03',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        '<a/><b/>text<c>mixed</c>',
        '"\u0000 json keeps every escape \ud83d\ude00 \u0041"',
        '"\u0041 \t 😀 \\u0000"',
        'fat:2,4 cat:3 rat:5A', 'fat & ( rat | !cat ) & ''sad''',
        '(1.5,-2.25)', '{-1,0,3}', '[(1,2),(3,4)]', '(3,4),(1,2)',
        '((0,0),(0,0))', '((0,0),(1,0),(1,1),(0,1))', '<(-1.5,2.5),0.5>',
        '16/B374D848', '100:200:110,120,150,199', '100:100:', 16384),
    (5, true, '-0.01', B'0001', B'0000000000000000000000000000000000000000000000000000000000000000000001',
        '255.255.255.255/32', '255.255.255.255/32', '01:23:45:67:89:ab', '01:23:45:67:89:ab:cd:ef',
        'a0eebc999c0b4ef8bb6d6bb9bd380a12',
        '<?xml version="1.0" standalone="yes"?><doc/>',
        '{}', '{"b": 2, "a": 1, "aa": 0, "": -1}',
        'a:1 b:2 c:3 d:4 e:5 f:6', '!!a',
        '(1e-300,-1e-300)', '{0,-1,0}', '[(0,0),(0,0)]', '(1e300,1e300),(-1e300,-1e300)',
        '[(0,0)]', '((0,0))', '<(0,0),1e-300>',
        '1/1', '1:1:', '1:2:1', 1);

-- --------------------------------------------------------------------------
-- Arrays
-- --------------------------------------------------------------------------

CREATE TABLE vals.arrays (
    id      integer PRIMARY KEY,
    ai      integer[],
    af      float8[],
    an      numeric[],
    at      text[],
    ab      bytea[],
    atz     timestamptz[],
    ach     char(3)[],
    aj      jsonb[],
    ar      int4range[],
    ai3     integer[][][]
);

INSERT INTO vals.arrays VALUES
    (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
    (3, '[-5:-3]={1,NULL,3}', '[0:3]={NaN,Infinity,-Infinity,-0}',
        '[-2147483648:-2147483646]={NaN,Infinity,-Infinity}',
        '[2147483645:2147483646]={NULL,"NULL"}',
        ARRAY['\x'::bytea, '\x00ff5c22'::bytea, NULL],
        '{infinity,-infinity,"2000-01-01 00:00:00+14"}',
        '{"a  ","  ",NULL}', ARRAY['{"a": null}'::jsonb, 'null'::jsonb, NULL],
        '{empty,"(,)","[1,2)",NULL}', '[0:1][-1:0][1:2]={{{1,2},{3,4}},{{5,6},{7,NULL}}}'),
    (4, '[1:1]={NULL}', '{5e-324,1.7976931348623157e308,0.1,33.6666666666666643}',
        '{0.000000000000000000001,1e100,-1.50}',
        ARRAY['', ' ', '"', '\', '{', '}', ',', 'a b', E'\t', E'\n', 'NULL', 'null', 'é😀'],
        ARRAY[(SELECT decode(string_agg(lpad(to_hex(n), 2, '0'), '' ORDER BY n), 'hex')
               FROM generate_series(0, 255) AS n)],
        '[3:3]={"1970-01-01 00:00:00.000001+00"}',
        '[-1:-1]={"é"}', ARRAY['[]'::jsonb, '{}'::jsonb, '""'::jsonb],
        '{"[-2147483648,2147483647)"}', '{{{NULL}}}'),
    (5, '[0:0][0:0][0:0][0:0][0:0][0:0]={{{{{{6}}}}}}', '{NULL,NULL}', '{NULL}',
        '{{a,b},{c,d}}', '{NULL}', '{NULL,NULL}', '{{x,y},{z,NULL}}', '{NULL}', '{NULL}',
        '{{{1}},{{2}}}');

-- --------------------------------------------------------------------------
-- Ranges and multiranges (built in)
-- --------------------------------------------------------------------------

CREATE TABLE vals.ranges (
    id      integer PRIMARY KEY,
    r4      int4range,
    r8      int8range,
    rn      numrange,
    rd      daterange,
    rts     tsrange,
    rtz     tstzrange,
    m4      int4multirange,
    mn      nummultirange,
    md      datemultirange,
    mtz     tstzmultirange
);

INSERT INTO vals.ranges VALUES
    (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (2, 'empty', 'empty', 'empty', 'empty', 'empty', 'empty', '{}', '{}', '{}', '{}'),
    (3, '(,)', '(,)', '(,)', '(,)', '(,)', '(,)', '{(,)}', '{(,)}', '{(,)}', '{(,)}'),
    (4, '[-2147483648,2147483647)', '[-9223372036854775808,9223372036854775807)',
        '(-Infinity,Infinity)', '[-infinity,infinity]', '[-infinity,infinity]',
        '(-infinity,infinity)',
        '{[-2147483648,-5),[0,1),[5,2147483647)}', '{(,-1e-20],[1e20,Infinity]}',
        '{[-infinity,2000-01-01),[2000-01-02,infinity]}',
        '{[4713-01-01 00:00:00+00 BC,1970-01-01 00:00:00+00),(2000-01-01 00:00:00+00,infinity]}'),
    (5, '[1,1]', '(1,2)', '[0.1,0.1]', '[2000-02-29,2000-03-01)',
        '("1999-12-31 23:59:59.999999","2000-01-01 00:00:00"]',
        '[2024-03-31 01:00:00+00,2024-03-31 01:00:00.000001+00)',
        '{[1,2),[3,4),[5,6)}', '{[NaN,NaN]}', '{[2000-01-01,2000-01-02)}', '{empty}');

-- --------------------------------------------------------------------------
-- reg* types: names on the wire, OIDs on disk
-- --------------------------------------------------------------------------

CREATE TABLE "Odd ""Schema""".".odd table" (id integer PRIMARY KEY);
CREATE FUNCTION vals.f(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION vals.f(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION vals.g(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE OPERATOR vals.=== (LEFTARG = integer, RIGHTARG = integer, FUNCTION = vals.g);
CREATE TEXT SEARCH CONFIGURATION vals.cfg (COPY = pg_catalog.simple);
CREATE TEXT SEARCH DICTIONARY vals.dict (TEMPLATE = pg_catalog.simple);
CREATE COLLATION vals.coll (LOCALE = 'C');
CREATE TYPE vals.rgb AS ENUM ('red', 'green', 'blue');

CREATE TABLE vals.regs (
    id      integer PRIMARY KEY,
    rc      regclass,
    rt      regtype,
    rp      regprocedure,
    ro      regoperator,
    rn      regnamespace,
    rcfg    regconfig,
    rdict   regdictionary,
    rcoll   regcollation,
    rarr    regclass[]
);

INSERT INTO vals.regs VALUES
    (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (2, 'vals.numbers', 'vals.rgb', 'vals.f(integer)', 'vals.===(integer,integer)', 'vals',
        'vals.cfg', 'vals.dict', 'vals.coll', '{vals.times,vals.bytes}'),
    (3, '"Odd ""Schema""".".odd table"', 'vals.rgb[]', 'vals.f(text)',
        'pg_catalog.+(integer,integer)', '"Odd ""Schema"""',
        'pg_catalog.simple', 'pg_catalog.simple', 'pg_catalog."C"',
        ARRAY['pg_catalog.pg_class', '"Odd ""Schema""".".odd table"']::regclass[]),
    (4, 'pg_catalog.pg_class', 'integer', 'pg_catalog.now()', 'pg_catalog.-(NONE,integer)', 'pg_catalog',
        'pg_catalog.english', 'pg_catalog.english_stem', 'pg_catalog.default', '{}');

-- --------------------------------------------------------------------------
-- User-defined types (these tables travel in text)
-- --------------------------------------------------------------------------

-- labels added BEFORE and AFTER others: sort order is not creation order
CREATE TYPE vals.mood AS ENUM ('ok', 'très "content", oui', 'sad');
ALTER TYPE vals.mood ADD VALUE 'awful' BEFORE 'ok';
ALTER TYPE vals.mood ADD VALUE 'meh' AFTER 'ok';
ALTER TYPE vals.mood ADD VALUE '' BEFORE 'awful';
ALTER TYPE vals.mood ADD VALUE 'with space, comma' AFTER 'sad';
ALTER TYPE vals.mood ADD VALUE 'ŝ😀' BEFORE 'sad';
ALTER TYPE vals.mood ADD VALUE 'a23456789012345678901234567890123456789012345678901234567890123';

CREATE TYPE vals.inner_t AS (f float8, t text, a integer[], m vals.mood);
CREATE TYPE vals.outer_t AS (i vals.inner_t, ia vals.inner_t[], d date, b bytea);
CREATE DOMAIN vals.small_ints AS integer[] CHECK (cardinality(VALUE) <= 3);
CREATE DOMAIN vals.pos_inner AS vals.inner_t CHECK ((VALUE).f IS NULL OR (VALUE).f > 0);
CREATE DOMAIN vals.short_text AS text CHECK (length(VALUE) < 10);
CREATE DOMAIN vals.shorter_text AS vals.short_text CHECK (length(VALUE) < 5);
CREATE TYPE vals.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi,
                                      multirange_type_name = vals.floatmultirange);
CREATE TYPE vals.moodrange AS RANGE (subtype = vals.mood);

CREATE TABLE vals.user_types (
    id      integer PRIMARY KEY,
    m       vals.mood,
    ma      vals.mood[],
    inr     vals.inner_t,
    outr    vals.outer_t,
    sa      vals.small_ints,
    pin     vals.pos_inner,
    st      vals.shorter_text,
    sta     vals.shorter_text[],
    fr      vals.floatrange,
    fm      vals.floatmultirange,
    mr      vals.moodrange,
    ca      vals.inner_t[]
);

INSERT INTO vals.user_types (id) VALUES (1);

INSERT INTO vals.user_types VALUES
    (2, '', '{}', ROW(NULL, NULL, NULL, NULL), ROW(NULL, NULL, NULL, NULL),
        '{}', ROW(NULL, NULL, NULL, NULL), '', '{}',
        'empty', '{}', 'empty', '{}'),
    (3, 'awful', '[-1:1]={awful,NULL,""}',
        ROW('NaN', '', '{}', 'ok'),
        ROW(ROW('-0', 'a,b"c\d(e)f', '[0:1]={1,NULL}', 'très "content", oui'),
            ARRAY[ROW(NULL, NULL, NULL, NULL)::vals.inner_t, NULL,
                  ROW(1e-300, ' ', '{}', '')::vals.inner_t],
            '4713-01-01 BC', '\x00ff'),
        '{1,NULL,3}', ROW(5e-324, 'NULL', '{NULL}', 'meh'), 'ab', '{"",NULL,"x y"}',
        '[-Infinity,Infinity]', '{[-Infinity,-1),[0,0],(1,Infinity]}',
        '[awful,sad)',
        ARRAY[ROW('Infinity', E'\\\n\t', '{{1,2},{3,4}}', 'ŝ😀')::vals.inner_t]),
    (4, 'a23456789012345678901234567890123456789012345678901234567890123',
        ARRAY['with space, comma', 'ŝ😀', 'sad', 'meh', 'ok', 'awful', '']::vals.mood[],
        ROW(1.7976931348623157e308, '()', '[5:5]={5}', 'with space, comma'),
        ROW(NULL, '{}', 'infinity', '\x'), '[7:9]={7,8,9}',
        ROW(NULL, NULL, NULL, 'sad'), 'é😀', '{"\\","\""}',
        '(,0.1]', '{(,)}', '[,meh]', '{NULL,"(,,,)","(0,\"\",{},\"\")"}'),
    (5, 'sad', '{{ok,sad},{meh,NULL}}', ROW('-Infinity', NULL, '{}', NULL),
        ROW(ROW(0.1, 'x', NULL, 'awful'), '[0:0]={"(,,,)"}', '-infinity', NULL),
        NULL, NULL, NULL, NULL,
        '[0.1,0.30000000000000004)', '{[1,2),[3,4)}', '(awful,"with space, comma"]',
        NULL);

-- --------------------------------------------------------------------------
-- Replica identity and keys made of edge values
-- --------------------------------------------------------------------------

-- no key: updates and deletes are matched on every column of the old row
CREATE TABLE vals.full_identity (
    f8      double precision,
    n       numeric,
    tz      timestamptz,
    i       interval,
    t       text,
    b       bytea,
    j       json,
    m       vals.mood,
    ai      integer[],
    rg      int4range
);
ALTER TABLE vals.full_identity REPLICA IDENTITY FULL;

INSERT INTO vals.full_identity VALUES
    ('-0', 'NaN', 'infinity', '-178956970 years -8 mons', '', '\x', '{"a":1,"a":2}', 'awful', '{}', 'empty'),
    ('0', '0.0', '-infinity', '1 mon -1 days', NULL, '\x00', '[]', '', '[0:0]={1}', '(,)'),
    ('NaN', 'Infinity', '2000-01-01 00:00:00+14', '00:00:00.000001', E'\t\\', '\x5c', 'null', 'sad', '{NULL}', '[1,2)'),
    ('5e-324', '1.50', '1850-01-01 00:00:00 Pacific/Chatham', '0', 'é😀', NULL, NULL, NULL, NULL, NULL),
    ('5e-324', '1.50', '1850-01-01 00:00:00 Pacific/Chatham', '0', 'é😀', NULL, NULL, NULL, NULL, NULL),
    -- pairs equal by each type's equality, of different values: 0 and -0,
    -- 1.5 and 1.50, one day and 24 hours
    ('0', '1.5', NULL, '1 day', 'equal a', NULL, NULL, NULL, '{1}', '[1,2)'),
    ('-0', '1.50', NULL, '24:00:00', 'equal a', NULL, NULL, NULL, '{1}', '[1,1]'),
    ('0', '1.5', NULL, '1 day', 'equal b', NULL, NULL, NULL, '{1}', '[1,2)'),
    ('-0', '1.50', NULL, '24:00:00', 'equal b', NULL, NULL, NULL, '{1}', '[1,1]');

CREATE TABLE vals.odd_keys (
    k_text  text,
    k_num   numeric,
    k_tz    timestamptz,
    v       integer,
    PRIMARY KEY (k_text, k_num, k_tz)
);

INSERT INTO vals.odd_keys VALUES
    ('', 'NaN', 'infinity', 1),
    (E'\\N', 'Infinity', '-infinity', 2),
    (E'tab\there\nnl', '-Infinity', '4713-01-01 00:00:00+00 BC', 3),
    ('é😀 "quoted" ''single''', 1.50, '2000-01-01 00:00:00.000001+00', 4),
    ('1.5', 1.5, '2000-01-01 00:00:00+00', 5),
    ('NULL', 0.000000000000000000001, '294276-12-31 23:59:59.999999+00', 6);

-- a value TOASTed out of line (md5 text does not compress away): an update
-- of another column sends it as "unchanged"
CREATE TABLE vals.toasted (
    id      integer PRIMARY KEY,
    big     bytea,
    bigt    text,
    v       integer
);
INSERT INTO vals.toasted
SELECT r,
       decode(string_agg(md5(r || ':' || g), '' ORDER BY g), 'hex'),
       string_agg(md5(g || ':' || r) || 'é', '' ORDER BY g),
       r
FROM generate_series(1, 3) AS r, generate_series(1, 2000) AS g
GROUP BY r;

ANALYZE;
