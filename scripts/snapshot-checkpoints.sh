#!/bin/bash
# Used while training: keeps a copy of the allocator checkpoint after every PPO update
# (train-allocator --checkpoint-every 1 overwrites OUT), so snapshots along one run become operating points.
# copy the checkpoint after every update: snap.sh LOG ALLOC DIR
log=$1; a=$2; d=$3; mkdir -p $d; last=0
while true; do
  n=$(grep -c '^upd ' $log 2>/dev/null); n=${n:-0}
  if [ "$n" -gt "$last" ]; then sleep 2; cp $a $d/u$(printf %03d $n).gguf 2>/dev/null; last=$n; fi
  grep -q '^wrote' $log 2>/dev/null && { cp $a $d/final.gguf; exit 0; }
  sleep 1
done
