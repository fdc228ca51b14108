#!/usr/bin/zsh -f
# SPDX-License-Identifier: MIT
# zsh_complete.zsh FPATH_DIR LINE: runs an interactive zsh on a pseudo-terminal (zpty) with
# compinit and the completion functions in FPATH_DIR, types LINE and a TAB, and prints the
# matches the completion system offers, one a line, between "<matches>" and "</matches>".
# Used by tests/check_completion.py; exits 77 (skip) without the zpty module.
zmodload zsh/zpty 2>/dev/null || exit 77

setup=$(mktemp) || exit 1
trap 'rm -f $setup' EXIT
cat > $setup <<END
PS1= RPS1= PROMPT= RPROMPT=
fpath=(${(q)1} \$fpath)
autoload -Uz compinit && compinit -u -D
bindkey '^I' complete-word
zstyle ':completion:*' insert-tab false
# Every match goes through compadd: print those it adds, without -O/-A/-D (the ones that
# only ask which would match).
compadd() {
	if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
		builtin compadd "\$@"
		return
	fi
	local -a __hits
	builtin compadd -A __hits "\$@"
	(( \$#__hits )) || return 1
	print -rl -- "<match>"\${^__hits}
	builtin compadd "\$@"
}
_rt_begin() { print -r -- '<matches>' }
_rt_end() { print -r -- '</matches>'; exit }
compprefuncs=(_rt_begin)
comppostfuncs=(_rt_end)
print -r -- '<ready>'
END

zpty rt zsh -f -i
zpty -w rt "source ${(q)setup}"
integer ok=0
while zpty -r rt line; do
	[[ $line == '<ready>'* ]] && { ok=1; break }
done
(( ok )) || { print -u2 'zsh_complete: the interactive zsh did not start'; exit 1 }
zpty -w -n rt "$2"$'\t'
integer inside=0
while zpty -r rt line; do
	line=${line%$'\r'}
	line=${line%$'\n'}
	line=${line%$'\r'}
	case $line in
	*'<matches>'*) inside=1; print -r -- '<matches>' ;;
	*'</matches>'*) print -r -- '</matches>'; break ;;
	*'<match>'*) (( inside )) && print -r -- ${line#*<match>} ;;
	esac
done
zpty -d rt
