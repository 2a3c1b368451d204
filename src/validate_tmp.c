/* TEMPORARY (branch routes only): stand-ins until the kyc validators
 * merge.  Never lands on main. */
#include "validate.h"
#include <string.h>
enum vresult validate_product_request(const char *b, size_t l, const struct vopts *o, struct json_object **out, struct verrors *e)
{ *out = json_parse_strict(b, l, o->max_depth, e); return *out ? V_OK : V_INVALID_JSON; }
enum vresult validate_documentation(const char *b, size_t l, const struct vopts *o, struct json_object **out, struct verrors *e)
{ *out = json_parse_strict(b, l, o->max_depth, e); return *out ? V_OK : V_INVALID_JSON; }
enum vresult validate_submit(const char *b, size_t l, const struct vopts *o, struct json_object **out, struct verrors *e)
{ *out = json_parse_strict(b, l, o->max_depth, e); return *out ? V_OK : V_INVALID_JSON; }
