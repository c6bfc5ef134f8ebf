# Runs `npm ci` for the web client when its node_modules is missing or older
# than the lock file; otherwise does nothing (a few stat calls per build).
#   cmake -DNPM=... -DSOURCE_DIR=<web> -DNPM_DIR=<build>/web/npm -DSTAMP=<file> -P npm_ci.cmake
#
# node_modules lives in the build tree (NPM_DIR), not in web/: two build
# trees never run npm ci into the same directory at the same time, and the
# source tree stays as committed.
foreach(var NPM SOURCE_DIR NPM_DIR STAMP)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "npm_ci.cmake: ${var} is not set")
  endif()
endforeach()

set(lock ${SOURCE_DIR}/package-lock.json)
set(installed ${NPM_DIR}/node_modules/.package-lock.json)  # written by npm after an install

set(need FALSE)
if(NOT EXISTS ${installed} OR NOT EXISTS ${STAMP})
  set(need TRUE)
elseif(${lock} IS_NEWER_THAN ${STAMP} OR ${SOURCE_DIR}/package.json IS_NEWER_THAN ${STAMP})
  set(need TRUE)
endif()
if(NOT need)
  return()
endif()

message(STATUS "web: npm ci in ${NPM_DIR} (node_modules missing or lock file changed)")
file(MAKE_DIRECTORY ${NPM_DIR})
file(COPY ${SOURCE_DIR}/package.json ${lock} DESTINATION ${NPM_DIR})
execute_process(
  COMMAND ${NPM} ci --no-audit --no-fund --loglevel=error
  WORKING_DIRECTORY ${NPM_DIR}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR
    "web: `npm ci` failed (exit ${rc}) in ${NPM_DIR}. It needs the npm registry "
    "(or a warm ~/.npm cache). Configure with -DCHATCORE_BUILD_WEB=OFF to build without the web client.")
endif()
file(TOUCH ${STAMP})
