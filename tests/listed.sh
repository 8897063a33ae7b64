#!/bin/sh
# Fails when a tests/test_*.cpp is not among the tests the build registers
# (the arguments after the tests directory): a file no program includes
# would never run, and nothing else would say so.
dir=$1
shift
status=0
for f in "$dir"/test_*.cpp; do
  name=$(basename "$f" .cpp)
  case " $* " in
    *" $name "*) ;;
    *) echo "$f: not included by a tests/tests_*.cpp nor built alone" >&2; status=1 ;;
  esac
done
[ $status -eq 0 ] && echo "every tests/test_*.cpp is registered ($# tests)"
exit $status
