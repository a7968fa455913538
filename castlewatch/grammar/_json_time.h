/* json_times (_json_time.c), a function of castlewatch.grammar._speedups. */
#ifndef CASTLEWATCH_JSON_TIME_H
#define CASTLEWATCH_JSON_TIME_H
#include <Python.h>

PyObject *json_times(PyObject *module, PyObject *args);
extern const char json_times_doc[];

#endif
