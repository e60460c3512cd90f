/*
 * json: string escaping shared by every JSON writer.
 */
#include "base/json.h"

/* Writes the escape for c into dst; returns its length (1, 2 or 6). */
static size_t
escape_char(unsigned char c, char out[7])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '"' || c == '\\')
	{
		out[0] = '\\';
		out[1] = (char) c;
		return 2;
	}
	if (c < 0x20)
	{
		out[0] = '\\';
		out[1] = 'u';
		out[2] = '0';
		out[3] = '0';
		out[4] = hex[c >> 4];
		out[5] = hex[c & 0xf];
		return 6;
	}
	out[0] = (char) c;
	return 1;
}

size_t
json_escape(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	if (cap == 0)
		return 0;
	for (; src != NULL && *src != '\0'; src++)
	{
		char e[7];
		size_t len = escape_char((unsigned char) *src, e);

		if (n + len >= cap)
			break;
		for (size_t i = 0; i < len; i++)
			dst[n++] = e[i];
	}
	dst[n] = '\0';
	return n;
}

void
json_write_string(FILE *out, const char *src)
{
	if (src == NULL)
	{
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (; *src != '\0'; src++)
	{
		char e[7];

		fwrite(e, 1, escape_char((unsigned char) *src, e), out);
	}
	fputc('"', out);
}
