#!/bin/sh
# SPDX-License-Identifier: MIT
# Fails when a C source or header differs from what the repo's .clang-format makes of it.
#   check_format.sh SOURCE_ROOT [CLANG_FORMAT]
# Fix with: clang-format -i $(find common proto daemon client tests/unit tests/fuzz tests/bench -name '*.[ch]')
set -eu
cd "$1"
cf=${2:-clang-format}
files=$(find common proto daemon client tests/unit tests/fuzz tests/bench -name '*.[ch]' | sort)
# shellcheck disable=SC2086
if ! "$cf" --dry-run -Werror $files; then
	echo "format: the files above differ from .clang-format; run: $cf -i FILE..." >&2
	exit 1
fi
echo "format: $(echo "$files" | wc -l) files match .clang-format"
