/* The Arduino library layout (specification 1.5) puts only src/ on the include path: this makes
   #include <rackvae.h> find the API, which stays in include/ for every other build. */
#include "../include/rackvae.h"
