# SPDX-License-Identifier: MIT
# bash completion for regscale-token(1): commands, each command's options, --format values,
# and profiles from the sockets that exist (/run/regscale-token/NAME.sock, then
# $XDG_RUNTIME_DIR/regscale-token/NAME.sock, as the client looks for them).
# tests/check_completion.py checks it against the client's own help.

# Prints the profile names of the sockets that exist, one a line.
_regscale_token_profiles()
{
	local dir sock name
	for dir in /run/regscale-token "${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/regscale-token"; do
		for sock in "$dir"/*.sock; do
			[[ -S $sock ]] || continue
			name=${sock##*/}
			printf '%s\n' "${name%.sock}"
		done
	done
}

_regscale_token()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands='get exec status whoami login logout refresh ping check metrics help'
	local global='--socket --profile -p --timeout --daemon-user --json --help -h --version -V'
	local i cmd='' cmd_at=0 opts
	COMPREPLY=()

	# "--format=json": bash splits at '=' (COMP_WORDBREAKS); complete after it.
	if [[ $cur == = ]]; then
		cur=''
	elif [[ $prev == = && COMP_CWORD -ge 2 ]]; then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	# The command is the first word that is neither a global option nor its argument.
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket | --profile | -p | --timeout | --daemon-user)
			((i++))
			[[ ${COMP_WORDS[i]} == = ]] && ((i++))
			;;
		-*) ;;
		*)
			cmd=${COMP_WORDS[i]} cmd_at=$i
			break
			;;
		esac
	done

	case $prev in
	--socket | --token-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
		;;
	--profile | -p)
		COMPREPLY=($(compgen -W "$(_regscale_token_profiles)" -- "$cur"))
		return
		;;
	--daemon-user)
		COMPREPLY=($(compgen -u -- "$cur"))
		return
		;;
	--timeout | --min-valid | --wait | --username | --warn | --crit)
		return
		;;
	--format)
		[[ $cmd == get ]] && COMPREPLY=($(compgen -W 'raw bearer header json env' -- "$cur"))
		return
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	case $cmd in
	get) opts='--format --min-valid --wait --json --help' ;;
	exec)
		# After "--" or the first operand, the words are CMD's: complete them as such.
		for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--min-valid | --wait) ((i++)) ;;
			--) break ;;
			-*) ;;
			*) break ;;
			esac
		done
		if ((i < COMP_CWORD)); then
			[[ ${COMP_WORDS[i]} == -- ]] && ((i++))
			if declare -F _command_offset >/dev/null; then
				_command_offset "$i" # bash-completion's, as for sudo
			elif ((i == COMP_CWORD)); then
				COMPREPLY=($(compgen -c -- "$cur"))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi
			return
		fi
		if [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -c -- "$cur"))
			return
		fi
		opts='--min-valid --wait --help --'
		;;
	login) opts='--username --mfa --token --token-file --json --help' ;;
	refresh) opts='--mfa --json --help' ;;
	status | whoami | logout | ping | metrics) opts='--json --help' ;;
	check) opts='--warn --crit --help' ;;
	help)
		((COMP_CWORD == cmd_at + 1)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		return
		;;
	*) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	fi
}

complete -F _regscale_token regscale-token
