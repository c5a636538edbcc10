#!/bin/bash
# usage: pxe-storm.sh FILE BLKSIZE  -- 200 concurrent atftp clients against pxe-bench tftp
set -u
FILE=$1; BLK=$2; N=200
S=pxts$$; C=pxtc$$; W=$(mktemp -d)
cleanup() { [ -n "${SP:-}" ] && kill $SP 2>/dev/null; wait 2>/dev/null; ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null; rm -rf $W; }
trap cleanup EXIT
ip netns add $S; ip netns add $C
ip link add pts$$ type veth peer name ptc$$
ip link set pts$$ netns $S; ip link set ptc$$ netns $C
ip -n $S addr add 10.77.0.1/16 dev pts$$; ip -n $C addr add 10.77.0.2/16 dev ptc$$
for n in $S $C; do ip -n $n link set lo up; done
ip -n $S link set pts$$ up; ip -n $C link set ptc$$ up
mkdir $W/root; cp /usr/lib/ipxe/undionly.kpxe $W/root/; printf 'x\n' > $W/root/tiny
ip netns exec $S taskset -c 1 ${BIN:-./pxe-bench} tftp -root $W/root -addr 10.77.0.1:69 > $W/srv.out 2>&1 &
SP=$!; sleep 0.5
mkfifo $W/go
OPT=(); [ "$BLK" != 512 ] && OPT=(--option "blksize $BLK")
for i in $(seq $N); do
  ( read < $W/go; ip netns exec $C taskset -c 0 atftp "${OPT[@]}" -g -r $FILE -l $W/out.$i 10.77.0.1 >/dev/null 2>&1
    if [ $? = 0 ] && cmp -s $W/out.$i $W/root/$FILE; then echo ok; else echo fail; fi > $W/res.$i ) &
done
sleep 1
T0=$(date +%s.%N); exec 3> $W/go; exec 3>&-; wait $(jobs -p | grep -v "^$SP$") 2>/dev/null
T1=$(date +%s.%N)
echo "file=$FILE blksize=$BLK clients=$N all done in $(echo "$T1 - $T0" | bc) s; ok=$(cat $W/res.* | grep -c ok) failed=$(cat $W/res.* | grep -c fail)"
