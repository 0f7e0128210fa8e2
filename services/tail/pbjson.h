/*
 * Any protobuf-c message as JSON, driven only by its descriptors, so a field added to
 * proto/casewire.proto shows up in casewire-tail's output with no change here.
 *
 * The mapping (proto3 JSON, except that names stay as in the .proto, snake_case):
 *  - fields at their default (0, "", false, empty bytes, empty repeated, unset message) are
 *    left out; a oneof member is printed when it is the one set;
 *  - int64 and uint64 are JSON integers (not strings): jq and our tests read them as numbers;
 *  - enums by name, lower-cased, without the prefix their values share (CHANNEL_WEB -> "web");
 *    a number the descriptor does not know (from a newer producer) is printed as a number;
 *  - bytes as base64 (standard alphabet, padded);
 *  - maps (protobuf-c: repeated XxxEntry messages) as JSON objects, keys as strings;
 *  - unknown fields (from a newer schema) as "_unknown_fields": number, wire type and length
 *    only, never their content, which might be personal data we cannot recognise.
 *
 * Personal data: proto/casewire.proto marks Person as personal data (customer, recipient).
 * Unless unmasked, Person.name goes through cw_mask_name, Person.phone through cw_mask_phone,
 * and any other string Person gains later through cw_mask_name; every other string is
 * scrubbed of phone-shaped numbers with cw_log_scrub, as every log line is, because free text
 * ("please call me on 139...") can carry a phone number.
 */
#ifndef CW_TAIL_PBJSON_H
#define CW_TAIL_PBJSON_H

#include <protobuf-c/protobuf-c.h>

#include "jsonw.h"

/* Writes msg as one JSON object; NULL writes {}. unmasked: personal data in clear. */
void pbjson_write_message(struct jsonw *w, const ProtobufCMessage *msg, int unmasked);

#endif
