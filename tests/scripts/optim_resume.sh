# optim_resume.sh — every optimizer resumes exactly in a fresh process: steps 1-10 and the
# state go to a file, a new process loads them and runs 11-20, which must equal steps 1-20
# bit for bit (tests/test_optim.c does the stepping).
. "$(dirname "$0")/lib.sh"
T="$HONE_BUILD/tests/test_optim"
for c in adamw_wd_clip adamw_amsgrad_clip sgd_nesterov_wd_clip lion_wd_clip adafactor_relative_beta1_wd \
         paged_adamw_32bit_wd_clip adamw_8bit_wd_clip paged_adamw_8bit_wd; do
  expect 0 "" -- "$T" save "$c" "$TMP/$c.state"
  expect 0 "bit-identical" -- "$T" resume "$c" "$TMP/$c.state"
done
# a state file from another optimizer is refused with a message, not misread
expect 1 "not Lion state" -- "$T" resume lion_wd_clip "$TMP/sgd_nesterov_wd_clip.state"
finish
