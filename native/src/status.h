/* The one status convention of the native code: functions that can fail
 * return an int holding TINYML_OK (0) or one of the negative codes below;
 * those that return a count (frames, an index) return the count or a
 * negative code.  native/_frontend.pyx exports the values as STATUS_*. */
#ifndef TINYML_STATUS_H
#define TINYML_STATUS_H

enum tinyml_status {
    TINYML_OK = 0,
    TINYML_ERR_NO_MEMORY = -1,
    TINYML_ERR_NON_FINITE = -2,       /* NaN or Inf in float input */
    TINYML_ERR_TOO_SHORT = -3,        /* fewer samples than one frame */
    TINYML_ERR_OUT_OF_RANGE = -4,     /* a float sample beyond +-TINYML_MAX_ABS_SAMPLE (samples.h) */
    TINYML_ERR_INVALID_ARGUMENT = -5, /* a size of 0, or one too large */
    TINYML_ERR_FLUSHED = -6           /* a feature stream pushed after flush(), without a reset() */
};

#endif
