/*
 * copyrow: a routing key read out of a COPY row (copyrow.h). The binary
 * format's integers are big-endian; the text format escapes backslash and
 * the control characters COPY TO writes as \b \f \n \r \t \v (never an
 * octal or hex escape), which this undoes for the key alone.
 */
#include "load/copyrow.h"

#include <stdio.h>
#include <string.h>

#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_TEXT    25
#define OID_VARCHAR 1043
#define OID_UUID    2950

/* "PGCOPY\n\377\r\n\0": the binary format's signature */
static const char signature[11] = {'P',  'G',    'C',  'O',  'P', 'Y',
                                   '\n', '\377', '\r', '\n', '\0'};

bool
copyrow_binary_decodes(uint32_t type_oid)
{
	switch (type_oid)
	{
		case OID_INT2:
		case OID_INT4:
		case OID_INT8:
		case OID_TEXT:
		case OID_VARCHAR:
		case OID_UUID:
			return true;
		default:
			return false;
	}
}

static uint32_t
be32(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return (uint32_t) u[0] << 24 | (uint32_t) u[1] << 16 |
	       (uint32_t) u[2] << 8 | (uint32_t) u[3];
}

static uint16_t
be16(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return (uint16_t) (u[0] << 8 | u[1]);
}

long
copyrow_binary_header(const char *buf, size_t len)
{
	uint32_t ext;

	if (len < 19 || memcmp(buf, signature, sizeof(signature)) != 0)
		return -1;
	ext = be32(buf + 15);
	if (ext > len - 19)
		return -1;
	return (long) (19 + ext);
}

bool
copyrow_binary_trailer(const char *buf, size_t len)
{
	return len == 2 && be16(buf) == 0xffff;
}

/* text form of a binary field of a routable type into out */
static bool
binary_text(const char *f, size_t flen, uint32_t type_oid, char *out,
            size_t cap, size_t *outlen)
{
	int n = -1;

	switch (type_oid)
	{
		case OID_INT2:
			if (flen == 2)
				n = snprintf(out, cap, "%d", (int) (int16_t) be16(f));
			break;
		case OID_INT4:
			if (flen == 4)
				n = snprintf(out, cap, "%ld", (long) (int32_t) be32(f));
			break;
		case OID_INT8:
			if (flen == 8)
			{
				uint64_t u = (uint64_t) be32(f) << 32 | be32(f + 4);

				n = snprintf(out, cap, "%lld", (long long) (int64_t) u);
			}
			break;
		case OID_UUID:
			if (flen == 16 && cap > 36)
			{
				const unsigned char *u = (const unsigned char *) f;
				size_t o = 0;

				for (int i = 0; i < 16; i++)
				{
					if (i == 4 || i == 6 || i == 8 || i == 10)
						out[o++] = '-';
					o += (size_t) snprintf(out + o, cap - o, "%02x", u[i]);
				}
				n = (int) o;
			}
			break;
		case OID_TEXT:
		case OID_VARCHAR:
			if (flen < cap)
			{
				memcpy(out, f, flen);
				n = (int) flen;
			}
			break;
		default:
			break;
	}
	if (n < 0 || (size_t) n >= cap)
		return false;
	*outlen = (size_t) n;
	return true;
}

static bool
binary_key(const char *buf, size_t len, int col, uint32_t type_oid, char *out,
           size_t cap, size_t *outlen, bool *null)
{
	size_t at = 2;
	int32_t flen = 0;

	if (len < 2 || (int) (int16_t) be16(buf) <= col)
		return false;
	for (int i = 0;; i++)
	{
		if (len - at < 4)
			return false;
		flen = (int32_t) be32(buf + at);
		at += 4;
		if (i == col)
			break;
		if (flen > 0)
		{
			if ((size_t) flen > len - at)
				return false;
			at += (size_t) flen;
		}
	}
	*null = flen < 0;
	if (*null)
		return true;
	if ((size_t) flen > len - at)
		return false;
	return binary_text(buf + at, (size_t) flen, type_oid, out, cap, outlen);
}

/* one text-format field f[0..flen), its escapes undone, into out */
static bool
text_unescape(const char *f, size_t flen, char *out, size_t cap, size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < flen; i++)
	{
		char c = f[i];

		if (c == '\\' && i + 1 < flen)
		{
			c = f[++i];
			switch (c)
			{
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				case 'v':
					c = '\v';
					break;
				default:
					/* a backslash or a character as it is */
					break;
			}
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	*outlen = o;
	return true;
}

static bool
text_key(const char *buf, size_t len, int col, char *out, size_t cap,
         size_t *outlen, bool *null)
{
	size_t start = 0, end;
	int i = 0;

	/* a line ends in "\n"; raw tabs and newlines occur only as delimiters */
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	for (; i < col; start++)
	{
		if (start >= len)
			return false;
		if (buf[start] == '\t')
			i++;
	}
	for (end = start; end < len && buf[end] != '\t'; end++)
		;
	*null = end - start == 2 && buf[start] == '\\' && buf[start + 1] == 'N';
	if (*null)
		return true;
	return text_unescape(buf + start, end - start, out, cap, outlen);
}

bool
copyrow_key(const char *buf, size_t len, bool binary, int col,
            uint32_t type_oid, char *out, size_t cap, size_t *outlen,
            bool *null)
{
	*null = false;
	*outlen = 0;
	if (col < 0 || cap == 0)
		return false;
	if (binary)
		return binary_key(buf, len, col, type_oid, out, cap, outlen, null);
	return text_key(buf, len, col, out, cap, outlen, null);
}
